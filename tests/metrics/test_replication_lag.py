"""`bzzz_replication_lag_entries{log_key}` of a real agent that follows another's log: its writer's
advertised `log_length` less the copy's length; behind while its source has not the newest
entries, 0 once the copy caught up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bzzz._core import MerkleLog
from bzzz.log.service import LogClient
from bzzz.mesh.client import MeshClient
from bzzz.paths import DataDir, merkle_dir
from tests.agents import Agent, free_port, mesh_worker, wait_until
from tests.metrics.harness import LOG, METRICS, scraped


def length(path: Path) -> int:
    try:
        with MerkleLog.open(path) as opened:
            return opened.length
    except (OSError, ValueError):
        return -1


def agent(start_agent: Callable[..., Agent], name: str, bootstrap: list[str], extra: str = "") -> tuple[Agent, str]:
    """An agent with a log and a mesh (on 127.0.0.1, dialling `bootstrap`), and the address it listens on."""
    mesh = mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}", bootstrap)
    started = start_agent({"log": LOG, "mesh": mesh}, name=name, node_id=name, extra=extra)
    started.wait_running("mesh", timeout=30)
    listen = wait_until(lambda: MeshClient(started.run_dir).status()["listen"], 30, f"{name} listening")
    return started, str(listen[0])


def key_of(writer: Agent) -> str:
    own = merkle_dir(DataDir(writer.data_dir).log)
    wait_until(lambda: (own / "header").exists(), 30, "the writer's log")
    with MerkleLog.open(own) as opened:
        return opened.key.hex()


def append(writer: Agent, count: int, tag: str) -> None:
    with LogClient(writer.run_dir, sender="test", timeout_s=30.0) as client:
        client.append([f"{tag} {n}".encode() for n in range(count)])


def advertised(reader: Agent, writer: str) -> int | None:
    """The log length `writer` last advertised, as `reader`'s mesh heard it."""
    peers = MeshClient(reader.run_dir).peers()
    return next((p["capabilities"].get("log_length") for p in peers if p["node_id"] == writer), None)


def test_a_copy_fed_by_a_peer_without_the_newest_entries_lags_by_exactly_those(start_agent) -> None:
    writer, writer_addr = agent(start_agent, "writer", [])
    relay, relay_addr = agent(start_agent, "relay", [writer_addr])
    reader, _ = agent(start_agent, "reader", [relay_addr], extra=METRICS)
    key = key_of(writer)
    append(writer, 10, "entry")
    # The relay copies the log once and does not follow it: it will not have what comes later.
    once = MeshClient(relay.run_dir, timeout_s=10.0).replicate(key, [writer_addr], timeout_s=120.0)
    assert once["state"] == "done" and once["following"] is False
    held = length(merkle_dir(DataDir(relay.data_dir).replica(key)))
    wait_until(lambda: advertised(reader, "writer") is not None, 30, "the reader hearing the writer through the relay")
    # The reader follows the log from the relay alone.
    job = MeshClient(reader.run_dir, timeout_s=10.0).replicate(key, [relay_addr], follow=True, timeout_s=120.0)
    assert job["state"] == "done" and job["following"] is True and job["length"] == held
    append(writer, 5, "later")
    copy = merkle_dir(DataDir(reader.data_dir).replica(key))
    behind = scraped(
        reader,
        lambda s: (
            advertised(reader, "writer") == held + 5 and s.get("bzzz_replication_lag_entries", log_key=key[:16]) == 5
        ),
        60,
        "the reader five entries behind what the writer advertises",
    )
    assert length(copy) == held  # what the relay had, and no more
    assert behind.get("bzzz_replication_lag_entries", log_key=key[:16]) == 5


def test_a_followed_log_shows_its_lag_and_it_closes_when_the_copy_catches_up(start_agent) -> None:
    writer, writer_addr = agent(start_agent, "writer", [])
    reader, _ = agent(start_agent, "reader", [writer_addr], extra=METRICS)
    key = key_of(writer)
    append(writer, 20, "entry")
    wait_until(lambda: advertised(reader, "writer") is not None, 30, "the reader hearing the writer")
    job = MeshClient(reader.run_dir, timeout_s=10.0).replicate(key, [writer_addr], follow=True, timeout_s=120.0)
    assert job["state"] == "done" and job["following"] is True
    append(writer, 5, "later")
    own = merkle_dir(DataDir(writer.data_dir).log)
    copy = merkle_dir(DataDir(reader.data_dir).replica(key))
    # The writer said its whole length, the copy holds all of it, and the gauge says 0 for that log.
    caught_up = scraped(
        reader,
        lambda s: (
            s.get("bzzz_replication_lag_entries", log_key=key[:16]) == 0
            and advertised(reader, "writer") == length(own) == length(copy) >= 26
        ),
        60,
        "the copy caught up with what the writer advertises",
    )
    assert [s.labels for s in caught_up.all("bzzz_replication_lag_entries")] == [{"log_key": key[:16]}]
