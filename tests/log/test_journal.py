"""A worker's journal: every entry is durable before it is sent, and reaches the log once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz.log import decode_entry
from bzzz.log.journal import Journal
from bzzz.redaction import REDACTED, register_secret
from bzzz.state import WorkerState
from tests.log.harness import Side, log_service


@pytest.fixture
def worker_state(tmp_path: Path) -> Iterator[WorkerState]:
    with WorkerState(tmp_path / "worker.sqlite3") as state:
        yield state


def entries(side: Side) -> list[dict[str, Any]]:
    side.open()
    decoded = [decode_entry(entry) for entry in side.entries()]
    assert all(isinstance(entry, dict) for entry in decoded)
    return decoded  # type: ignore[return-value]


def kinds(side: Side) -> list[str]:
    return [entry["type"] for entry in entries(side)]


def skip_backoff(state: WorkerState) -> None:
    with state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt_at = 0")


def journal(state: WorkerState, run_dir: Path) -> Journal:
    return Journal(state, run_dir, sender="worker", agent="agent-1", node_id="node-1", timeout_s=0.5)


def test_an_entry_is_appended_at_once_when_the_log_answers(
    side: Side, run_dir: Path, worker_state: WorkerState
) -> None:
    with log_service(side, run_dir):
        j = journal(worker_state, run_dir)
        assert j.record("claimed", {"issue": 7}) == 0
        assert j.record("released", {"issue": 7}) == 1
        j.close()
    assert kinds(side) == ["claimed", "released"]
    assert worker_state.pending(10) == [], "nothing is left waiting once the log has it"


def test_an_entry_waits_in_the_outbox_while_the_log_is_down_and_lands_once(
    side: Side, run_dir: Path, worker_state: WorkerState
) -> None:
    j = journal(worker_state, run_dir)
    assert j.record("claimed", {"issue": 7}) is None  # no log service: nothing lost, nothing blocks long
    assert j.record("released", {"issue": 7}) is None
    assert len(worker_state.pending(10, now=float("inf"))) == 2
    with log_service(side, run_dir):
        skip_backoff(worker_state)
        assert j.deliver() == 2
        assert j.deliver() == 0
    j.close()
    assert kinds(side) == ["claimed", "released"], "each once, in the order they were recorded"


def test_an_entry_survives_the_worker_dying_before_it_was_sent(side: Side, run_dir: Path, tmp_path: Path) -> None:
    with WorkerState(tmp_path / "w.sqlite3") as state:
        journal(state, run_dir).record("claimed", {"issue": 7})  # the log is down; then the worker dies
    with WorkerState(tmp_path / "w.sqlite3") as state, log_service(side, run_dir):  # the restarted worker
        skip_backoff(state)
        j = journal(state, run_dir)
        assert j.deliver() == 1
        j.close()
    assert kinds(side) == ["claimed"]


def test_a_secret_of_this_agent_never_reaches_the_log_or_the_outbox(
    side: Side, run_dir: Path, worker_state: WorkerState
) -> None:
    secret = "ghp_journaltestsecret0123456789abcdef"
    with log_service(side, run_dir):
        j = journal(worker_state, run_dir)
        j.record("before", {"output": secret})  # positive control: recorded before the secret is known
        register_secret(secret)
        j.record("after", {"output": f"the token is {secret}"})
        j.close()
    before, after = entries(side)
    assert before["output"] == secret
    assert secret not in after["output"] and REDACTED in after["output"]
    with worker_state.transaction() as db:
        payloads = [row[0] for row in db.execute("SELECT payload FROM outbox ORDER BY id")]
    assert secret.encode() in payloads[0] and secret.encode() not in payloads[1], "redacted before it is stored"
