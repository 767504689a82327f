"""kill -9 a worker while work flows through its state: nothing lost, nothing done twice.

The worker is a real process (tests/state/crash_child.py) on a real SQLite file; the tests kill
it with SIGKILL, start it again, and finally let it run to the end of its stream.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bzzz.state import WorkerState
from tests.state.crash_child import POINTS, TOPIC, message, work

ROOT = Path(__file__).resolve().parents[2]


def start(state: Path, count: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.state.crash_child", str(state), str(count), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_the_end(state: Path, count: int, *args: str) -> list[str]:
    child = start(state, count, *args)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[-1] == "done"
    return lines


def assert_everything_done_exactly_once(path: Path, count: int) -> None:
    with WorkerState(path) as state:
        with state.transaction() as db:
            effects = db.execute("SELECT msg_id, digest FROM effects").fetchall()
        outbox = state.pending(limit=10 * count)
        inbox = state.counts()
        results = {message(i)[0]: state.result_of(message(i)[0]) for i in range(count)}
    expected = {message(i)[0]: work(message(i)[1]) for i in range(count)}

    twice = sorted(msg_id for msg_id, n in Counter(m for m, _ in effects).items() if n > 1)
    assert not twice, f"effects done twice: {twice[:10]}"
    assert dict(effects) == expected, f"lost effects: {sorted(expected.keys() - dict(effects).keys())[:10]}"

    assert [item.key for item in outbox] == sorted(expected), "one outbox entry per message, in order"
    assert all(item.topic == TOPIC and item.payload == expected[item.key or ""] for item in outbox)

    assert inbox == {"unfinished": 0, "finished": count, "pending": count, "delivered": 0}
    assert results == expected


@pytest.mark.parametrize("point", POINTS)
def test_a_worker_killed_at_each_point_of_handling_a_message_resumes_without_loss_or_repeat(
    tmp_path: Path, point: str
) -> None:
    path, count = tmp_path / "w.sqlite3", 40
    crashed = start(path, count, "--crash-at", f"{point}:17")
    crashed.communicate(timeout=30)
    assert crashed.returncode == -signal.SIGKILL

    lines = run_to_the_end(path, count)

    # Killed before its finish committed, message 17 is resumed; after, it is only redelivered.
    assert lines[0] == ("resumed 0" if point == "finished" else "resumed 1")
    assert_everything_done_exactly_once(path, count)


def test_a_worker_killed_at_random_moments_under_load_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    path, count, kills = tmp_path / "w.sqlite3", 2000, 5
    seed = int(os.environ.get("BZZZ_TEST_SEED") or int.from_bytes(os.urandom(4), "big"))
    rng = random.Random(seed)
    print(f"seed {seed} (BZZZ_TEST_SEED={seed} repeats these kill points)")
    # Each run must get past its own target, so every kill lands while work is under way.
    targets = sorted(rng.sample(range(100, count - 100), kills))
    resumed = []
    started = time.monotonic()
    for target in targets:
        # With work taking time, most kills land in the handler; without, in SQLite's commits.
        child = start(path, count, "--work-us", str(rng.choice((0, 200))))
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("resumed"):
                resumed.append(int(line.split()[1]))
            if line.startswith("accepted") and int(line.split()[1]) >= target:
                break
        time.sleep(rng.uniform(0, 0.002))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"the worker ended before the kill (seed {seed}): {err}"

    lines = run_to_the_end(path, count, "--work-us", "200")
    resumed.append(int(lines[0].split()[1]))
    print(f"resumed after each kill: {resumed[1:]}, {time.monotonic() - started:.1f}s")

    assert_everything_done_exactly_once(path, count)
