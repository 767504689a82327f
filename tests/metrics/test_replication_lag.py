"""`bzzz_replication_lag_entries{log_key}` of a real agent that follows another's log: its writer's
advertised `log_length` less the copy's length, back to 0 once the copy caught up."""

from __future__ import annotations

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


def test_a_followed_log_shows_its_lag_and_it_closes_when_the_copy_catches_up(start_agent) -> None:
    writer = start_agent(
        {"log": LOG, "mesh": mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}")}, name="writer", node_id="writer"
    )
    writer.wait_running("mesh", timeout=30)
    listen = wait_until(lambda: MeshClient(writer.run_dir).status()["listen"], 30, "the writer listening")
    reader: Agent = start_agent(
        {"log": LOG, "mesh": mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}", [listen[0]])},
        name="reader",
        node_id="reader",
        extra=METRICS,
    )
    reader.wait_running("mesh", timeout=30)
    own = merkle_dir(DataDir(writer.data_dir).log)
    wait_until(lambda: (own / "header").exists(), 30, "the writer's log")
    with MerkleLog.open(own) as opened:
        key = opened.key.hex()
    with LogClient(writer.run_dir, sender="test", timeout_s=30.0) as client:
        client.append([f"entry {n}".encode() for n in range(20)])
    wait_until(lambda: MeshClient(reader.run_dir).peers(), 30, "the reader hears the writer")
    job = MeshClient(reader.run_dir, timeout_s=10.0).replicate(key, [listen[0]], follow=True, timeout_s=120.0)
    assert job["state"] == "done" and job["following"] is True

    with LogClient(writer.run_dir, sender="test", timeout_s=30.0) as client:
        client.append([f"later {n}".encode() for n in range(5)])
    copy = merkle_dir(DataDir(reader.data_dir).replica(key))

    def advertised() -> int | None:
        peers = MeshClient(reader.run_dir).peers()
        return next((p["capabilities"].get("log_length") for p in peers if p["node_id"] == "writer"), None)

    # The writer said its whole length, the copy holds all of it, and the gauge says 0 for that log.
    caught_up = scraped(
        reader,
        lambda s: (
            s.get("bzzz_replication_lag_entries", log_key=key[:16]) == 0
            and advertised() == length(own) == length(copy) >= 26
        ),
        60,
        "the copy caught up with what the writer advertises",
    )
    assert [s.labels for s in caught_up.all("bzzz_replication_lag_entries")] == [{"log_key": key[:16]}]
