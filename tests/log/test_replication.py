"""Any peer replicates any agent's log by its key, over `/bzzz/hypercore/1.0.0`, and verifies
every entry with the writer's public key alone: real agents (supervisor; log and mesh workers)
on 127.0.0.1, and a lying peer that gets nothing past the checks."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bzzz._core import KeyPair, MerkleLog
from bzzz.log.service import LogClient
from bzzz.mesh.client import MeshClient
from bzzz.mesh.replication import PROTOCOL, Chunk, Done, _requests, head_of, read_frame, write_frame
from bzzz.paths import DataDir, merkle_dir
from tests.agents import Agent, free_port, mesh_worker, wait_until
from tests.interop import js_hypercore
from tests.mesh.rawpeer import raw_peer

ENTRY = 1024


def agent_with_log(start_agent: Callable[..., Agent], name: str, bootstrap: list[str] = ()) -> Agent:  # type: ignore[assignment]
    mesh = mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}", bootstrap)
    agent = start_agent({"log": {"module": "bzzz.workers.log"}, "mesh": mesh}, name=name, node_id=name)
    agent.wait_running("mesh", timeout=30)
    agent.wait_running("log", timeout=30)
    wait_until(lambda: MeshClient(agent.run_dir).status()["listen"], 30, f"{name} listening")
    return agent


def address(agent: Agent) -> str:
    return str(MeshClient(agent.run_dir).status()["listen"][0])


def own_log(agent: Agent) -> Path:
    return merkle_dir(DataDir(agent.data_dir).log)


def key_of(agent: Agent) -> str:
    path = own_log(agent)
    wait_until(lambda: (path / "header").exists(), 30, "the log created")
    with MerkleLog.open(path) as opened:
        return opened.key.hex()


def write(agent: Agent, count: int, tag: str = "entry") -> None:
    with LogClient(agent.run_dir, sender="test", timeout_s=30.0) as client:
        for first in range(0, count, 500):
            client.append([f"{tag} {n} ".encode().ljust(ENTRY, b".") for n in range(first, min(first + 500, count))])


def state(path: Path) -> tuple[int, bytes]:
    with MerkleLog.open(path) as opened:
        return opened.length, opened.tree_hash()


def fetched(agent: Agent) -> float:
    return float(MeshClient(agent.run_dir).status()["metrics"]["bzzz_replication_fetched_entries_total"][""])


def refused(agent: Agent) -> dict[str, float]:
    return dict(MeshClient(agent.run_dir).status()["metrics"]["bzzz_replication_refused_total"])


def replicate(agent: Agent, key: str, *peers: str, follow: bool = False) -> dict[str, Any]:
    return MeshClient(agent.run_dir, timeout_s=10.0).replicate(key, list(peers), follow=follow, timeout_s=300.0)


def test_a_log_of_large_entries_is_replicated_in_frames_the_receiver_accepts(start_agent) -> None:
    # 256 entries of 3 MB would make one 768 MB chunk, which a receiver refuses (MAX_FRAME):
    # the sender cuts chunks by size as well.
    writer = agent_with_log(start_agent, "writer")
    reader = agent_with_log(start_agent, "reader", [address(writer)])
    key = key_of(writer)
    with LogClient(writer.run_dir, sender="test", timeout_s=60.0) as client:
        for n in range(8):
            client.append([bytes([n]) * 3_000_000])
    wait_until(
        lambda: any(p["capabilities"]["log_key"] == key for p in MeshClient(reader.run_dir).peers()),
        30,
        "the reader hears the writer's key",
    )
    job = replicate(reader, key)
    assert job["state"] == "done", job
    assert state(merkle_dir(DataDir(reader.data_dir).replica(key))) == state(own_log(writer))
    assert not any(refused(reader).values())


def test_ten_thousand_entries_are_replicated_verified_and_a_killed_transfer_resumes(start_agent) -> None:
    writer = agent_with_log(start_agent, "writer")
    reader = agent_with_log(start_agent, "reader", [address(writer)])
    key = key_of(writer)
    write(writer, 10_000)
    wait_until(
        lambda: any(p["capabilities"]["log_key"] == key for p in MeshClient(reader.run_dir).peers()),
        30,
        "the reader hears the writer's key",
    )

    job = replicate(reader, key)  # found by the key the writer advertises
    written = state(own_log(writer))[0]  # the 10,000, and what the log worker journals itself
    assert written >= 10_000 and job["state"] == "done" and job["length"] == written, job
    copy = merkle_dir(DataDir(reader.data_dir).replica(key))
    assert state(copy) == state(own_log(writer))
    shown = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "log", "verify", key, "--data-dir", str(reader.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and f"ok: {written} entries" in shown.stdout

    # 10,000 more; the reader's mesh worker is killed in the middle of copying them.
    write(writer, 10_000, tag="more")
    MeshClient(reader.run_dir, timeout_s=10.0).replicate(key, timeout_s=0.0)  # starts it, does not wait
    staging = DataDir(reader.data_dir).replica(key) / "staging.sqlite"

    def staged() -> int:
        with sqlite3.connect(staging) as db:
            return int(db.execute("SELECT count(*) FROM staged").fetchone()[0])

    wait_until(lambda: staged() >= 2_000, 60, "part of the transfer staged")
    old = reader.worker("mesh")["pid"]
    os.kill(old, signal.SIGKILL)
    reader.wait_running("mesh", other_than=old, timeout=30)
    assert state(copy)[0] == written  # the half-done transfer never reached the log
    kept = staged()  # but what verified of it is kept
    wait_until(
        lambda: any(p["capabilities"]["log_key"] == key for p in MeshClient(reader.run_dir).peers()),
        30,
        "the reader hears the writer again",
    )
    job = replicate(reader, key)
    assert job["state"] == "done" and job["length"] == state(own_log(writer))[0] >= 20_000
    assert state(copy) == state(own_log(writer))
    # Only what was missing was fetched: the restarted worker's count starts at zero.
    assert fetched(reader) == state(own_log(writer))[0] - written - kept and kept >= 2_000


def test_a_live_log_is_followed_while_its_writer_appends_even_across_a_restart(start_agent) -> None:
    writer = agent_with_log(start_agent, "writer")
    reader = agent_with_log(start_agent, "reader", [address(writer)])
    key = key_of(writer)
    write(writer, 10)
    wait_until(lambda: MeshClient(reader.run_dir).peers(), 30, "the reader hears the writer")
    job = replicate(reader, key, follow=True)
    assert job["state"] == "done" and job["following"] is True
    show = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "log",
            "show",
            key,
            "--follow",
            "--tail",
            "1",
            "--data-dir",
            str(reader.data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert show.stdout is not None
        lines = [show.stdout.readline()]
        while not lines[-1].startswith("#"):  # the summary, then the last entry held: it is reading
            lines.append(show.stdout.readline())
        copy = merkle_dir(DataDir(reader.data_dir).replica(key))
        for n in range(5):
            with LogClient(writer.run_dir, sender="test") as client:
                client.append(f"live {n}".encode())
            wait_until(lambda: state(copy) == state(own_log(writer)), 30, f"live entry {n} replicated")
        while not any("live 4" in line for line in lines):
            lines.append(show.stdout.readline())
        # Following outlasts the mesh worker: killed, restarted, it picks the log up again.
        old = reader.worker("mesh")["pid"]
        os.kill(old, signal.SIGKILL)
        reader.wait_running("mesh", other_than=old, timeout=30)
        with LogClient(writer.run_dir, sender="test") as client:
            client.append(b"after the restart")
        wait_until(lambda: state(copy) == state(own_log(writer)), 60, "the entry after the restart replicated")
    finally:
        show.terminate()
    printed = [line for line in lines if "live " in line]
    assert [next(w for w in ("live 0", "live 1", "live 2", "live 3", "live 4") if w in line) for line in printed] == [
        f"live {n}" for n in range(5)
    ]


def test_a_log_outlives_its_writer_in_the_replicas_of_its_peers(start_agent) -> None:
    writer = agent_with_log(start_agent, "writer")
    keeper = agent_with_log(start_agent, "keeper", [address(writer)])
    key = key_of(writer)
    write(writer, 300)
    writer_peer = MeshClient(writer.run_dir).status()["peer_id"]
    wait_until(lambda: MeshClient(keeper.run_dir).peers(), 30, "the keeper hears the writer")
    assert replicate(keeper, key)["length"] == state(own_log(writer))[0]
    writer.call("shutdown")
    writer.process.wait(30)
    latecomer = agent_with_log(start_agent, "latecomer", [address(keeper)])
    wait_until(
        lambda: any(key in (p["capabilities"].get("replicas") or []) for p in MeshClient(latecomer.run_dir).peers()),
        30,
        "the keeper's replica advertised",
    )
    job = replicate(latecomer, key)
    kept = state(merkle_dir(DataDir(keeper.data_dir).replica(key)))  # what the writer had signed when it left
    assert job["state"] == "done" and job["length"] == kept[0] >= 300 and job["peer"] != writer_peer
    assert state(merkle_dir(DataDir(latecomer.data_dir).replica(key))) == kept


# --- a peer that lies ----------------------------------------------------------------------


class Liar:
    """Serves a log the test wrote (with the writer's key), honestly up to `honest` entries,
    and past them as `lie` says."""

    def __init__(self, log: MerkleLog, fork: MerkleLog) -> None:
        self.log, self.fork = log, fork
        self.lie = "none"

    async def handle(self, stream: Any) -> None:
        request = await read_frame(stream, _requests)
        served = self.fork if self.lie == "fork" else self.log
        head = head_of(served)
        if self.lie == "forged head":  # entries and proofs as they are, under a signature that is not the writer's
            head = msgspec.structs.replace(head, signature=bytes(len(head.signature)))
        await write_frame(stream, head)
        if type(request).__name__ != "Get":
            await stream.close()
            return
        entries = []
        for i in range(request.start, served.length):
            value = served.get(i)
            nodes = [tuple(n) for n in served.proof(i).nodes]
            if self.lie == "tampered" and i == served.length - 1:
                value = value.replace(b"entry", b"ENTRY")
            if self.lie == "bad proof" and i == request.start and nodes:
                index, size, digest = nodes[0]
                nodes[0] = (index, size, bytes(32 - len(digest)) + digest[::-1])
            entries.append((i, value, nodes))
        if self.lie == "truncated":
            await write_frame(stream, Chunk(entries[: len(entries) // 2]))
            await stream.close()  # and no Done
            return
        await write_frame(stream, Chunk(entries))
        await write_frame(stream, Done())
        await stream.close()


@contextmanager
def liar_serving(tmp_path: Path) -> Iterator[tuple[Any, Liar, str]]:
    pair = KeyPair.generate()
    honest = MerkleLog.create(tmp_path / "honest", pair)
    fork = MerkleLog.create(tmp_path / "fork", pair)
    honest.append_batch([f"entry {n}".encode() for n in range(100)])
    # The same writer's key, another history from entry 50 on: what a key holder who signs two
    # versions (or a thief of the key) would serve.
    fork.append_batch([f"entry {n}".encode() if n < 50 else f"other {n}".encode() for n in range(100)])
    liar = Liar(honest, fork)
    with raw_peer(KeyPair.generate(), []) as peer:
        peer.serve(str(PROTOCOL), liar.handle)
        yield peer, liar, honest.key.hex()


def test_a_lying_peer_is_caught_every_time_and_the_copy_is_never_touched(start_agent, tmp_path: Path) -> None:
    reader = agent_with_log(start_agent, "reader")
    with liar_serving(tmp_path) as (peer, liar, key):
        job = replicate(reader, key, peer.addr)
        assert job["state"] == "done" and job["length"] == 100, job
        copy = merkle_dir(DataDir(reader.data_dir).replica(key))
        # The writer goes on; so does the forked twin (the same key, a history that parts at entry 50).
        liar.log.append_batch([f"entry {n}".encode() for n in range(100, 150)])
        liar.fork.append_batch([f"other {n}".encode() for n in range(100, 150)])
        for lie, what in (
            ("tampered", "proof"),
            ("bad proof", "proof"),
            ("forged head", "head"),
            ("fork", "fork"),
            ("truncated", "truncated"),
        ):
            before = refused(reader)[what]
            files = {p.name: p.read_bytes() for p in copy.iterdir()}
            liar.lie = lie
            job = replicate(reader, key, peer.addr)
            assert job["state"] == "failed", (lie, job)
            assert refused(reader)[what] == before + 1, lie
            assert {p.name: p.read_bytes() for p in copy.iterdir()} == files, f"{lie} changed the copy"
        liar.lie = "none"
        job = replicate(reader, key, peer.addr)
        assert job["state"] == "done" and job["length"] == 150
        assert state(copy) == (liar.log.length, liar.log.tree_hash())


@pytest.mark.skipif(js_hypercore.node_path() is None, reason="Node.js is not installed")
def test_js_hypercore_accepts_the_proofs_of_a_replicated_log(start_agent, tmp_path: Path) -> None:
    js_hypercore.check_installed()
    reader = agent_with_log(start_agent, "reader")
    with liar_serving(tmp_path) as (peer, _liar, key):
        assert replicate(reader, key, peer.addr)["length"] == 100
    reader.call("shutdown")
    reader.process.wait(30)
    with MerkleLog.open(merkle_dir(DataDir(reader.data_dir).replica(key))) as copy:
        proofs = [copy.proof(i).to_json() for i in (0, 37, 99)]
        verified = js_hypercore.verify_proofs(copy.key, proofs)
        tree_hash = copy.tree_hash()
    assert [(v["ok"], v.get("value")) for v in verified] == [(True, f"entry {n}".encode()) for n in (0, 37, 99)]
    assert all(v["length"] == 100 and v["tree_hash"] == tree_hash for v in verified)
