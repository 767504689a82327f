"""Series checked where it is cheapest: the outbox depth in a real worker-like process in
prometheus_client's multiprocess mode (read back as the agent's endpoint reads it), and the
replication lag of a mesh node that follows a log."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from bzzz._core import KeyPair
from bzzz.log import AgentLog
from bzzz.mesh.identity import load_or_create
from bzzz.mesh.node import MeshNode
from bzzz.mesh.settings import MeshSettings
from bzzz.paths import DataDir, merkle_dir

FILL = """
import os, sys
from bzzz.state import WorkerState
state = WorkerState.for_worker(sys.argv[1], "journal")
ids = [state.put("log", b"entry", key=f"k{n}") for n in range(3)]
state.put("log", b"entry", key="k0")  # the same key again: nothing more to deliver
state.ack(ids[0])
try:
    with state.transaction():
        state.put("log", b"entry", key="rolled back")
        raise RuntimeError
except RuntimeError:
    pass
print(os.getpid())
"""
REOPEN = """
import os, sys
from bzzz.state import WorkerState
WorkerState.for_worker(sys.argv[1], "journal")
print(os.getpid())
"""


def depth(folder: Path) -> float | None:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return registry.get_sample_value("bzzz_bus_queue_depth", {"worker": "journal"})


def worker_process(script: str, data_dir: Path, folder: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-c", script, str(data_dir)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout)


def test_the_outbox_depth_is_what_waits_for_delivery_and_shows_again_after_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    first = worker_process(FILL, tmp_path / "data", folder)
    # Three put, one the same key again, one delivered, one rolled back: two wait.
    assert depth(folder) == 2
    mark_process_dead(first, str(folder))  # type: ignore[no-untyped-call]
    assert depth(folder) is None  # the dead worker's backlog is not shown as if it were live
    worker_process(REOPEN, tmp_path / "data", folder)
    assert depth(folder) == 2  # its successor reports the rows still waiting as soon as it opens them


def following_node(data_dir: Path, key: bytes) -> MeshNode:
    """A mesh node (not started) that follows log `key`, as it does after `bzzz log replicate --follow`."""
    node = MeshNode(load_or_create(data_dir), MeshSettings(), node_id="reader", data_dir=data_dir)
    node._following[key] = trio.CancelScope()
    return node


def lag(node: MeshNode) -> dict[str, float]:
    return node.metrics.snapshot().get("bzzz_replication_lag_entries", {})


def test_the_lag_of_a_followed_log_is_its_writers_advertised_length_minus_the_replicas(tmp_path: Path) -> None:
    writer = AgentLog.create(tmp_path / "writer", KeyPair.generate())
    for n in range(3):
        writer.append_event("note", n=n)
    key = writer.log.key
    writer.close()
    data_dir = tmp_path / "reader"
    # The reader holds the writer's three entries (a copy of the files stands in for a transfer).
    shutil.copytree(merkle_dir(tmp_path / "writer"), merkle_dir(DataDir(data_dir).replica(key.hex())))
    node = following_node(data_dir, key)
    node._replica(key)
    label = key.hex()[:16]

    node._heard_length({"log_key": key.hex(), "log_length": 10})
    assert lag(node) == {label: 7}
    node._heard_length({"log_key": key.hex(), "log_length": 2})  # a broadcast older than what is held
    assert lag(node) == {label: 0}
    for bad in (-5, True, "12", None):  # what a peer's payload may hold instead of a length
        node._heard_length({"log_key": key.hex(), "log_length": bad})
    assert lag(node) == {label: 0}
    other = KeyPair.generate().public_key
    node._heard_length({"log_key": other.hex(), "log_length": 50})  # a log this node does not follow
    assert lag(node) == {label: 0}


def test_a_followed_log_not_fetched_yet_lags_by_all_its_writer_advertises(tmp_path: Path) -> None:
    key = KeyPair.generate().public_key
    node = following_node(tmp_path / "reader", key)
    node._replica(key)  # nothing here yet: created from the first peer's head
    assert lag(node) == {}  # unknown until the writer says its length
    node._heard_length({"log_key": key.hex(), "log_length": 4})
    assert lag(node) == {key.hex()[:16]: 4}
