"""Delivering an outbox: acked once answered, retried when not, under ids that never change."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.bus import Client, Request, Service
from bzzz.state import WorkerState
from bzzz.state.outbox import deliver


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))  # socket paths must be short
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[WorkerState]:
    with WorkerState(tmp_path / "producer.sqlite3") as s:
        yield s


def serve(
    run_dir: Path, seen: list[Request], fail: set[bytes] = frozenset()
) -> tuple[threading.Event, threading.Thread]:
    def handler(request: Request) -> bytes:
        seen.append(request)
        if request.body in fail:
            raise RuntimeError("not today")
        return b"ok " + request.body

    stop = threading.Event()
    ready = threading.Event()

    def run() -> None:
        with Service(run_dir, "sink", handler) as service:
            ready.set()
            service.serve_forever(stop, 0.02)

    thread = threading.Thread(target=run)
    thread.start()
    assert ready.wait(5)
    return stop, thread


def test_answered_messages_are_acked_with_stable_request_ids(run_dir: Path, state: WorkerState) -> None:
    seen: list[Request] = []
    stop, thread = serve(run_dir, seen)
    state.put("sink", b"a", key="first")
    state.put("sink", b"b")
    replies: list[bytes] = []
    with Client(run_dir, sender="producer", timeout_s=1) as client:
        assert deliver(state, client, on_reply=lambda item, reply: replies.append(reply)) == (2, 0)
        assert deliver(state, client) == (0, 0)
    stop.set()
    thread.join()
    assert replies == [b"ok a", b"ok b"]
    assert [r.request_id for r in seen] == ["producer/first", "producer/#2"]
    assert state.counts()["pending"] == 0


def test_unanswered_and_refused_messages_are_retried_later(run_dir: Path, state: WorkerState) -> None:
    state.put("sink", b"a", key="first")
    with Client(run_dir, sender="producer", timeout_s=0.05, retries=0) as client:
        assert deliver(state, client) == (0, 1)  # nobody serves "sink" yet
        seen: list[Request] = []
        stop, thread = serve(run_dir, seen, fail={b"b"})
        state.put("sink", b"b", key="second")
        assert deliver(state, client) == (0, 1)  # "a" waits out its backoff; "b" is refused
        [item] = [i for i in state.pending(now=float("inf")) if i.key == "first"]
        assert item.attempts == 1
        assert deliver_due(state, client) == (1, 1)  # once due: "a" goes through, "b" refused again
        stop.set()
        thread.join()
    assert [r.request_id for r in seen] == ["producer/second", "producer/first", "producer/second"]


def deliver_due(state: WorkerState, client: Client) -> tuple[int, int]:
    with state.transaction() as db:  # skip the backoff wait
        db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE acked_at IS NULL")
    return deliver(state, client)
