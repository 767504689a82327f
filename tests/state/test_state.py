"""The state's API on real SQLite files: inbox, outbox, transactions, reopening, schema versions."""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.state import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    SchemaVersionError,
    StateError,
    WorkerState,
    state_path,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "worker.sqlite3"


@pytest.fixture
def state(path: Path) -> Iterator[WorkerState]:
    with WorkerState(path) as state:
        yield state


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection of its own, to look at the file from outside."""
    return sqlite3.connect(path, isolation_level=None)


class Boom(Exception):
    pass


# --- the file -------------------------------------------------------------------------------


def test_a_new_state_file_is_private_in_wal_mode_and_has_the_current_schema_version(
    state: WorkerState, path: Path
) -> None:
    db = raw(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_synchronous_is_normal_by_default_and_full_when_durable(path: Path) -> None:
    with WorkerState(path) as state, state.transaction() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with WorkerState(path, durable=True) as state, state.transaction() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_each_worker_of_an_agent_has_its_own_file_in_a_private_state_dir(tmp_path: Path) -> None:
    with WorkerState.for_worker(tmp_path, "log") as log, WorkerState.for_worker(tmp_path, "github-1") as github:
        log.accept("a", b"for the log")
        assert github.unfinished() == []
    assert log.path == state_path(tmp_path, "log") == tmp_path / "state" / "log.sqlite3"
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


@pytest.mark.parametrize("name", ["", "../log", "a/b", ".hidden", "log worker"])
def test_a_worker_name_that_is_not_plain_is_refused_as_a_file_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="letters, digits"):
        state_path(tmp_path, name)


def test_reopening_keeps_the_inbox_the_results_the_outbox_and_the_workers_own_tables(path: Path) -> None:
    with WorkerState(path) as state:
        state.accept("a", b"A")
        state.accept("b", b"B")
        with state.transaction() as db:
            db.execute("CREATE TABLE notes (text TEXT)")
            db.execute("INSERT INTO notes VALUES ('kept')")
            state.finish("a", b"result A")
        sent = state.put("t", b"1", key="k1")
        retried = state.put("t", b"2")
        state.ack(sent)
        state.nack(retried, 0)
    with WorkerState(path) as state, state.transaction() as db:
        assert [i.msg_id for i in state.unfinished()] == ["b"]
        assert state.result_of("a") == b"result A"
        assert [(i.id, i.attempts) for i in state.pending()] == [(retried, 1)]
        assert state.put("t", b"1", key="k1") == sent
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_a_state_file_from_a_newer_schema_version_is_refused_with_a_clear_error_and_left_alone(path: Path) -> None:
    WorkerState(path).close()
    raw(path).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = path.read_bytes()
    with pytest.raises(
        SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 1}.*newer bzzz.*up to {SCHEMA_VERSION}"
    ):
        WorkerState(path)
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_refused(path: Path) -> None:
    path.write_bytes(b"not sqlite at all " * 100)
    with pytest.raises(StateError, match="not a database"):
        WorkerState(path)


def test_an_sqlite_file_of_something_else_is_refused(path: Path) -> None:
    raw(path).execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StateError, match="not a bzzz state file"):
        WorkerState(path)
    other = path.with_name("other.sqlite3")
    raw(other).execute("PRAGMA application_id = 42")
    with pytest.raises(StateError, match="not a bzzz state file"):
        WorkerState(other)


def test_a_closed_state_says_so(state: WorkerState) -> None:
    state.close()
    state.close()
    with pytest.raises(StateError, match="closed"):
        state.accept("a", b"")


# --- inbox ----------------------------------------------------------------------------------


def test_a_message_accepted_twice_is_refused_the_second_time_and_the_first_payload_kept(state: WorkerState) -> None:
    assert state.accept("m1", b"first") is True
    assert state.accept("m1", b"second") is False
    assert [(i.msg_id, i.payload) for i in state.unfinished()] == [("m1", b"first")]


def test_unfinished_work_comes_back_in_acceptance_order_without_the_finished(state: WorkerState) -> None:
    for msg_id in ["z", "a", "m", "b", "y"]:
        state.accept(msg_id, msg_id.encode())
    state.finish("a")
    state.finish("y", b"done")
    items = state.unfinished()
    assert [i.msg_id for i in items] == ["z", "m", "b"]
    assert [i.seq for i in items] == sorted(i.seq for i in items)
    assert all(not i.finished and i.result is None for i in items)


def test_a_finished_message_keeps_its_result_for_redeliveries(state: WorkerState) -> None:
    state.accept("m1", b"request")
    assert state.result_of("m1") is None
    assert state.finish("m1", b"reply") is True
    assert state.accept("m1", b"request") is False
    assert state.result_of("m1") == b"reply"


def test_finishing_twice_changes_nothing_and_finishing_the_unknown_is_an_error(state: WorkerState) -> None:
    state.accept("m1", b"")
    assert state.finish("m1", b"first") is True
    assert state.finish("m1", b"second") is False
    assert state.result_of("m1") == b"first"
    with pytest.raises(KeyError):
        state.finish("never accepted")


def test_get_tells_unknown_unfinished_and_finished_apart(state: WorkerState) -> None:
    assert state.get("m1") is None
    state.accept("m1", b"p")
    item = state.get("m1")
    assert item is not None and not item.finished and item.payload == b"p"
    state.finish("m1")
    item = state.get("m1")
    assert item is not None and item.finished and item.result is None
    assert item.finished_at is not None and item.finished_at >= item.accepted_at


# --- transactions ---------------------------------------------------------------------------


def test_an_exception_inside_a_transaction_leaves_neither_the_finish_nor_the_outbox_entry_nor_own_rows(
    state: WorkerState,
) -> None:
    with state.transaction() as db:
        db.execute("CREATE TABLE effects (msg_id TEXT)")
    state.accept("m1", b"work")
    with pytest.raises(Boom):
        with state.transaction() as db:
            db.execute("INSERT INTO effects VALUES ('m1')")
            state.put("t", b"effect of m1", key="m1")
            state.finish("m1", b"result")
            raise Boom
    assert [i.msg_id for i in state.unfinished()] == ["m1"]
    assert state.result_of("m1") is None
    assert state.pending() == []
    with state.transaction() as db:
        assert db.execute("SELECT count(*) FROM effects").fetchone()[0] == 0
    # and the work can then be done
    with state.transaction() as db:
        db.execute("INSERT INTO effects VALUES ('m1')")
        state.put("t", b"effect of m1", key="m1")
        state.finish("m1", b"result")
    assert state.unfinished() == [] and len(state.pending()) == 1


def test_a_transaction_is_seen_by_another_connection_all_at_once_on_commit(state: WorkerState, path: Path) -> None:
    state.accept("m1", b"work")
    with WorkerState(path) as other:
        with state.transaction():
            state.put("t", b"effect", key="m1")
            state.finish("m1", b"result")
            assert other.result_of("m1") is None and other.pending() == []
            assert [i.msg_id for i in other.unfinished()] == ["m1"]
        assert other.result_of("m1") == b"result" and len(other.pending()) == 1
        assert other.unfinished() == []


def test_a_failed_nested_transaction_undoes_only_itself(state: WorkerState) -> None:
    with state.transaction():
        state.put("t", b"outer", key="outer")
        with pytest.raises(Boom):
            with state.transaction():
                state.put("t", b"inner", key="inner")
                raise Boom
        state.put("t", b"after", key="after")
    assert [i.key for i in state.pending()] == ["outer", "after"]


def test_a_failed_statement_caught_inside_a_transaction_does_not_end_it(state: WorkerState) -> None:
    with state.transaction() as db:
        db.execute("CREATE TABLE once (k TEXT PRIMARY KEY)")
        db.execute("INSERT INTO once VALUES ('x')")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO once VALUES ('x')")
        state.put("t", b"still here")
    assert len(state.pending()) == 1


def test_a_full_disk_inside_a_transaction_rolls_it_back_and_leaves_the_state_usable(state: WorkerState) -> None:
    state.accept("m1", b"work")
    with state.transaction() as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 8}")  # a disk with 8 pages left
    with pytest.raises(sqlite3.OperationalError, match="full"):
        with state.transaction():
            state.finish("m1", b"result")
            state.put("t", b"x" * 1_000_000, key="m1")
    assert [i.msg_id for i in state.unfinished()] == ["m1"] and state.pending() == []
    with state.transaction():
        state.finish("m1", b"result")
        state.put("t", b"small", key="m1")
    assert state.unfinished() == [] and len(state.pending()) == 1


def test_the_callers_error_comes_through_when_the_transaction_was_already_rolled_back(state: WorkerState) -> None:
    # SQLite itself rolls a transaction back on some errors (I/O, out of memory); simulated here.
    with pytest.raises(Boom):
        with state.transaction() as db:
            state.put("t", b"x")
            with state.transaction() as db:
                db.execute("ROLLBACK")
                raise Boom
    assert state.pending() == []
    state.put("t", b"y")
    assert len(state.pending()) == 1


# --- outbox ---------------------------------------------------------------------------------


def test_enqueueing_the_same_key_twice_makes_one_entry_even_after_delivery(state: WorkerState) -> None:
    first = state.put("t", b"one", key="k")
    assert state.put("t", b"one again", key="k") == first
    assert [(i.id, i.payload) for i in state.pending()] == [(first, b"one")]
    state.ack(first)
    assert state.put("t", b"one more", key="k") == first
    assert state.pending() == []


def test_without_a_key_every_put_is_a_new_entry(state: WorkerState) -> None:
    ids = [state.put("t", b"same") for _ in range(3)]
    assert len(set(ids)) == 3
    assert [i.id for i in state.pending()] == ids


def test_pending_lists_undelivered_messages_oldest_first_up_to_the_limit(state: WorkerState) -> None:
    ids = [state.put(f"topic/{n % 3}", bytes([n]), key=f"k{n}") for n in range(10)]
    assert [i.id for i in state.pending()] == ids
    assert [i.id for i in state.pending(limit=4)] == ids[:4]
    state.ack(ids[0])
    state.ack(ids[5])
    assert [i.payload for i in state.pending(limit=4)] == [b"\x01", b"\x02", b"\x03", b"\x04"]
    assert [i.id for i in state.pending()] == ids[1:5] + ids[6:]


def test_acks_are_idempotent_and_a_delivered_message_is_not_pending_or_retried(state: WorkerState) -> None:
    sent = state.put("t", b"x")
    assert state.ack(sent) is True
    assert state.ack(sent) is False
    assert state.ack(12345) is False
    assert state.nack(sent) is None
    assert state.pending() == [] and state.next_due() is None


def test_a_nacked_message_waits_out_its_delay_while_later_ones_go_ahead(state: WorkerState) -> None:
    first, second, third = (state.put("t", bytes([n])) for n in range(3))
    assert state.nack(first, 10.0) == 10.0
    now = time.time()
    assert [i.id for i in state.pending()] == [second, third]
    item = next(i for i in state.pending(now=now + 11))
    assert (item.id, item.attempts) == (first, 1)
    assert now + 9 < item.next_attempt_at <= now + 10
    assert [i.id for i in state.pending(now=now + 11)] == [first, second, third]


def test_a_nack_with_no_delay_is_due_again_at_once(state: WorkerState) -> None:
    sent = state.put("t", b"x")
    state.nack(sent, 0)
    assert [(i.id, i.attempts) for i in state.pending()] == [(sent, 1)]


def test_the_default_backoff_doubles_with_each_failure_up_to_the_maximum_with_jitter(path: Path) -> None:
    with WorkerState(path, backoff_initial_s=1.0, backoff_max_s=10.0) as state:
        sent = state.put("t", b"x")
        for attempt, full in enumerate([1, 2, 4, 8, 10, 10, 10], start=1):
            before = time.time()
            delay = state.nack(sent)
            assert delay is not None and full * 0.5 <= delay <= full
            (item,) = state.pending(now=before + full + 1)
            assert item.attempts == attempt
            assert before + delay <= item.next_attempt_at <= time.time() + delay
            assert state.next_due() == item.next_attempt_at
            assert state.pending(now=before) == []


# --- retention ------------------------------------------------------------------------------


def test_prune_forgets_only_finished_and_delivered_entries_older_than_the_cutoff(state: WorkerState) -> None:
    state.accept("old", b"")
    state.finish("old", b"r")
    state.accept("open", b"")
    sent = state.put("t", b"sent", key="sent")
    state.ack(sent)
    state.put("t", b"unsent", key="unsent")
    time.sleep(0.05)
    state.accept("recent", b"")
    state.finish("recent")

    assert state.prune(older_than_s=3600) == 0
    assert state.prune(older_than_s=0.03) == 2
    assert state.get("old") is None and state.get("recent") is not None
    assert [i.msg_id for i in state.unfinished()] == ["open"]
    assert [i.key for i in state.pending()] == ["unsent"]
    assert state.counts() == {"unfinished": 1, "finished": 1, "pending": 1, "delivered": 0}
    # What retention means: past it, a redelivery is accepted again and a key enqueued again.
    assert state.accept("old", b"") is True
    assert state.put("t", b"sent", key="sent") != sent
