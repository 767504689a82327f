"""The pid-file lock (`bzzz.supervisor.pidlock`) that gives a run dir and a data dir to one agent:
processes racing for it never both hold it, a removed lock file is never locked twice, and
the lock dies with its holder. The controls show the old claim (read the pid file, then write
it) letting two processes through."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bzzz.paths import PID_FILE
from bzzz.supervisor import pidlock
from bzzz.supervisor.pidlock import LockHeld, PidLock
from bzzz.supervisor.rundir import RunDir, RunDirBusy

CHILD = Path(__file__).with_name("lock_child.py")


class Child:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def answer(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line, f"the child exited ({self.process.wait()})"
        return line


@pytest.fixture
def children() -> Iterator[Callable[[int], list[Child]]]:
    started: list[Child] = []

    def start(count: int) -> list[Child]:
        started.extend(Child() for _ in range(count))
        return started[-count:]

    yield start
    for child in started:
        child.process.kill()
        child.process.wait()


def test_two_processes_racing_for_the_lock_never_both_hold_it(
    children: Callable[[int], list[Child]], tmp_path: Path
) -> None:
    one, two = children(2)
    path = tmp_path / PID_FILE
    wins = {one.process.pid: 0, two.process.pid: 0}
    for round_ in range(200):
        one.send(f"lock {path}")  # both asked before either answers: they race
        two.send(f"lock {path}")
        answers = {one: one.answer(), two: two.answer()}
        holders = [child for child, said in answers.items() if said == "held"]
        assert len(holders) == 1, answers
        (holder,) = holders
        loser = two if holder is one else one
        assert answers[loser].startswith("busy"), answers
        assert path.read_text() == f"{holder.process.pid}\n"
        wins[holder.process.pid] += 1
        holder.send("unlock rm" if round_ % 2 else "unlock")  # a removed file is raced for as well
        assert holder.answer() == "free"
    assert sum(wins.values()) == 200


def test_control_the_old_claim_read_then_write_lets_two_processes_through(
    children: Callable[[int], list[Child]], tmp_path: Path
) -> None:
    one, two = children(2)
    path = tmp_path / PID_FILE
    # Each reads the pid file before the other has written it, as two agents started together may.
    for child in (one, two):
        child.send(f"check {path}")
    assert [one.answer(), two.answer()] == ["clear", "clear"]
    for child in (one, two):
        child.send(f"write {path}")
    assert [one.answer(), two.answer()] == ["held", "held"], "both believe the run dir is theirs"
    # The lock, the same two processes, in the same order: the second is refused.
    one.send(f"lock {path}")
    assert one.answer() == "held"
    two.send(f"lock {path}")
    assert two.answer() == f"busy {one.process.pid}"


def test_the_lock_dies_with_its_holder_and_the_next_one_sees_who_held_it(
    children: Callable[[int], list[Child]], tmp_path: Path
) -> None:
    (child,) = children(1)
    path = tmp_path / PID_FILE
    child.send(f"lock {path}")
    assert child.answer() == "held"
    with pytest.raises(LockHeld) as refused:
        PidLock(path).acquire()
    assert refused.value.pid == child.process.pid
    child.process.send_signal(signal.SIGKILL)
    child.process.wait()
    lock = PidLock(path)
    lock.acquire()
    assert lock.held and lock.previous == child.process.pid
    assert path.read_text() == f"{os.getpid()}\n"
    lock.release()


def _removed_while_locking(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[PidLock]:
    """Makes the next lock taken on `path` meet the worst moment: after it opened the file and
    before it locks it, the holder lets go and removes the file, and a third process takes a
    new file of that name. Returns the holders the third one is put in."""
    first = PidLock(path)
    first.acquire()
    third: list[PidLock] = []
    real_flock = pidlock.fcntl.flock

    def flock(fd: int, operation: int) -> Any:
        if not third:
            first.release(remove=True)
            third.append(PidLock(path))
            third[0].acquire()
        return real_flock(fd, operation)

    monkeypatch.setattr(
        pidlock, "fcntl", SimpleNamespace(flock=flock, LOCK_EX=pidlock.fcntl.LOCK_EX, LOCK_NB=pidlock.fcntl.LOCK_NB)
    )
    return third


def test_a_lock_file_removed_as_a_racer_opens_it_is_not_locked_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # flock locks belong to open files, not processes: two PidLocks in one process exclude each other.
    path = tmp_path / PID_FILE
    third = _removed_while_locking(monkeypatch, path)
    with pytest.raises(LockHeld):
        PidLock(path).acquire()
    assert third[0].held


def test_control_without_the_check_that_the_file_is_still_there_two_hold_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / PID_FILE
    third = _removed_while_locking(monkeypatch, path)
    monkeypatch.setattr(pidlock, "_still_at", lambda fd, path: True)
    racer = PidLock(path)
    racer.acquire()  # it locked the removed file
    assert racer.held and third[0].held
    racer.release()


def test_a_run_dir_is_refused_while_held_and_left_clean_when_released(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = RunDir(run_dir)
    assert first.claim() == []
    with pytest.raises(RunDirBusy, match=f"already running in {run_dir} \\(supervisor pid {os.getpid()}\\)"):
        RunDir(run_dir).claim()
    assert (run_dir.stat().st_mode & 0o777) == 0o700
    first.release()
    assert list(run_dir.iterdir()) == []


def test_a_crashed_supervisors_files_are_reported_stale(children: Callable[[int], list[Child]], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (child,) = children(1)
    child.send(f"lock {run_dir / PID_FILE}")
    assert child.answer() == "held"
    (run_dir / "control.sock").touch()
    child.process.send_signal(signal.SIGKILL)
    child.process.wait()
    claimed = RunDir(run_dir)
    assert sorted(p.name for p in claimed.claim()) == ["control.sock", PID_FILE]
    assert (run_dir / PID_FILE).read_text() == f"{os.getpid()}\n"
    claimed.release()
