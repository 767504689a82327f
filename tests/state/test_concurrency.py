"""Threads and processes on one state file: nothing corrupted, nothing lost, no deadlock."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bzzz.state import WorkerState

ROOT = Path(__file__).resolve().parents[2]


class Boom(Exception):
    pass


def integrity(path: Path) -> str:
    return str(sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0])


def work(state: WorkerState, msg_ids: list[str]) -> None:
    for msg_id in msg_ids:
        assert state.accept(msg_id, msg_id.encode())
        with state.transaction():
            state.put("t", msg_id.encode(), key=msg_id)
            state.finish(msg_id, b"ok")


def run_threads(*targets: threading.Thread) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(timeout=60)
        assert not t.is_alive(), "a thread is stuck"


def test_a_thread_never_joins_another_threads_transaction_on_a_shared_state(tmp_path: Path) -> None:
    state = WorkerState(tmp_path / "w.sqlite3")
    inside = threading.Event()
    accepted_at: list[float] = []
    failed_at: list[float] = []

    def failing() -> None:
        with pytest.raises(Boom):
            with state.transaction():
                state.put("t", b"rolled back", key="a")
                inside.set()
                time.sleep(0.2)
                failed_at.append(time.monotonic())
                raise Boom

    def other() -> None:
        inside.wait()
        state.accept("b", b"kept")  # waits for the other transaction; not part of it
        accepted_at.append(time.monotonic())

    run_threads(threading.Thread(target=failing), threading.Thread(target=other))
    assert accepted_at[0] >= failed_at[0]
    assert state.pending() == [] and [i.msg_id for i in state.unfinished()] == ["b"]
    state.close()


def test_threads_sharing_one_state_record_all_their_work(tmp_path: Path) -> None:
    state = WorkerState(tmp_path / "w.sqlite3")
    batches = [[f"t{n}-{i}" for i in range(300)] for n in range(4)]
    run_threads(*(threading.Thread(target=work, args=(state, batch)) for batch in batches))
    assert state.counts() == {"unfinished": 0, "finished": 1200, "pending": 1200, "delivered": 0}
    assert {i.key for i in state.pending(limit=2000)} == {m for batch in batches for m in batch}
    state.close()
    assert integrity(tmp_path / "w.sqlite3") == "ok"


def test_threads_with_a_state_each_on_the_same_file_record_all_their_work(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    WorkerState(path).close()
    batches = [[f"t{n}-{i}" for i in range(300)] for n in range(4)]
    states = [WorkerState(path) for _ in batches]
    run_threads(*(threading.Thread(target=work, args=args) for args in zip(states, batches, strict=True)))
    for state in states:
        state.close()
    with WorkerState(path) as state:
        assert state.counts() == {"unfinished": 0, "finished": 1200, "pending": 1200, "delivered": 0}
    assert integrity(path) == "ok"


def race(tmp_path: Path, names: list[str], count: int) -> list[int]:
    """Start a race_child per name, all at once on a new state file; how many shared messages each won."""
    path, go = tmp_path / "w.sqlite3", tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.state.race_child", str(path), name, str(count), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    deadline = time.monotonic() + 30
    while not all(go.with_name(f"go.{name}").exists() for name in names) and time.monotonic() < deadline:
        time.sleep(0.005)
    go.touch()
    won = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        won.append(int(out))
    return won


@pytest.mark.parametrize("round", range(3))
def test_processes_opening_a_new_state_file_at_once_all_get_it(tmp_path: Path, round: int) -> None:
    # Turning a new file to WAL mode, SQLite answers "locked" at once rather than waiting when
    # two connections want the file at the same moment; the state retries up to its busy timeout.
    names = [f"p{n}" for n in range(8)]
    assert sum(race(tmp_path, names, count=1)) == 1
    with WorkerState(tmp_path / "w.sqlite3") as state:
        assert state.counts()["finished"] == 1 + len(names)


def test_processes_racing_for_the_same_messages_each_win_a_message_exactly_once(tmp_path: Path) -> None:
    path, count = tmp_path / "w.sqlite3", 500
    won = race(tmp_path, ["p1", "p2", "p3"], count)

    assert sum(won) == count
    with WorkerState(path) as state, state.transaction() as db:
        effects = db.execute("SELECT msg_id, by FROM effects").fetchall()
        results = dict(db.execute("SELECT msg_id, result FROM inbox").fetchall())
        assert state.counts() == {"unfinished": 0, "finished": 4 * count, "pending": 4 * count, "delivered": 0}
    times = Counter(msg_id for msg_id, _ in effects)
    assert set(times.values()) == {1} and len(times) == 4 * count
    assert all(results[msg_id] == by.encode() for msg_id, by in effects)  # finished by whoever did it
    assert integrity(path) == "ok"


def test_a_writer_waits_for_another_up_to_its_busy_timeout_and_then_says_the_file_is_locked(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    holder, patient, impatient = WorkerState(path), WorkerState(path), WorkerState(path, busy_timeout_s=0.05)
    locked = threading.Event()

    def hold() -> None:
        with holder.transaction():
            holder.accept("held", b"")
            locked.set()
            time.sleep(0.4)

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        impatient.accept("impatient", b"")
    assert [i.msg_id for i in impatient.unfinished()] == []  # readers are never blocked
    started = time.monotonic()
    assert patient.accept("patient", b"")
    assert time.monotonic() - started > 0.2
    thread.join()
    assert [i.msg_id for i in patient.unfinished()] == ["held", "patient"]
    for state in (holder, patient, impatient):
        state.close()
