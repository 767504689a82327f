"""The log service: appends from other workers land in the log exactly once.

The crash tests build, on disk, exactly the state a kill -9 leaves between two steps of an
append (intent committed / entries appended / request finished), then start a new appender on
it, as the restarted log worker does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.bus import Request, RequestTimeout
from bzzz.log.service import (
    MAX_ATTEMPTS,
    SERVICE,
    AppendResult,
    LogAppender,
    LogAppendError,
    LogClient,
    append_request,
)
from tests.log.harness import Side, log_service


def request(request_id: str, *entries: bytes) -> Request:
    return Request(request_id, SERVICE, append_request(list(entries)), "test")


def result(raw: bytes) -> AppendResult:
    import msgspec

    return msgspec.msgpack.decode(raw, type=AppendResult)


def test_an_append_goes_to_the_end_of_the_log_and_says_where(side: Side) -> None:
    appender = side.open()
    assert result(appender.handle(request("a", b"one"))) == AppendResult(0, 1)
    assert result(appender.handle(request("b", b"two", b"three"))) == AppendResult(1, 2)
    assert side.entries() == [b"one", b"two", b"three"]


def test_a_repeated_request_is_answered_from_the_inbox_and_not_appended_again(side: Side) -> None:
    appender = side.open()
    first = appender.handle(request("a", b"one"))
    assert appender.replies.seen("a") == first  # what the bus Service answers a copy with
    assert appender.handle(request("a", b"one")) == first  # even if the handler is reached
    assert side.entries() == [b"one"]


def test_the_answer_to_a_request_survives_a_restart(side: Side) -> None:
    first = side.open().handle(request("a", b"one"))
    appender = side.open()
    assert appender.replies.seen("a") == first
    assert appender.recover() == 0
    assert side.entries() == [b"one"]


def commit_intent(side: Side, appender: LogAppender, request_id: str, *entries: bytes) -> None:
    """Step 1 of an append, and nothing after it: the state of a kill right after the intent."""
    assert side.state is not None and side.log is not None
    with side.state.transaction() as db:
        assert side.state.accept(request_id, append_request(list(entries)))
        db.execute("INSERT INTO log_intent (msg_id, first_index) VALUES (?, ?)", (request_id, side.log.length))


def test_killed_after_the_intent_the_restarted_worker_appends_once(side: Side) -> None:
    appender = side.open()
    appender.handle(request("a", b"one"))
    commit_intent(side, appender, "b", b"two", b"three")
    appender = side.open()  # the restart
    assert side.entries() == [b"one"]
    assert appender.recover() == 1
    assert side.entries() == [b"one", b"two", b"three"]
    raw = appender.replies.seen("b")
    assert raw is not None and result(raw) == AppendResult(1, 2)
    assert appender.recover() == 0


def test_killed_after_the_append_the_restarted_worker_only_finishes(side: Side) -> None:
    appender = side.open()
    commit_intent(side, appender, "a", b"one", b"two")
    assert side.log is not None
    side.log.append_batch([b"one", b"two"])  # step 2 done, step 3 not
    appender = side.open()
    assert appender.recover() == 1
    assert side.entries() == [b"one", b"two"]  # not appended a second time
    raw = appender.replies.seen("a")
    assert raw is not None and result(raw) == AppendResult(0, 2)


def test_a_copy_arriving_for_an_unfinished_request_settles_it_once(side: Side) -> None:
    appender = side.open()
    commit_intent(side, appender, "a", b"one")
    # No recover() yet: the copy itself reaches the handler.
    assert result(appender.handle(request("a", b"one"))) == AppendResult(0, 1)
    assert result(appender.handle(request("a", b"one"))) == AppendResult(0, 1)
    assert side.entries() == [b"one"]


def test_a_log_that_lost_its_tail_gets_the_entries_at_its_end(side: Side) -> None:
    appender = side.open()
    commit_intent(side, appender, "a", b"one")
    assert side.state is not None
    with side.state.transaction() as db:  # as if a power cut took entries the intent had seen
        db.execute("UPDATE log_intent SET first_index = 5 WHERE msg_id = 'a'")
    appender = side.open()
    appender.recover()
    assert side.entries() == [b"one"]


def test_a_request_that_kills_the_worker_every_time_is_given_up(side: Side) -> None:
    appender = side.open()
    commit_intent(side, appender, "poison", b"x")
    assert side.state is not None
    # Each start counts an attempt before making it; a worker dying in it never finishes it.
    for attempt in range(1, MAX_ATTEMPTS + 1):
        with side.state.transaction() as db:
            db.execute("UPDATE log_intent SET attempts = ? WHERE msg_id = 'poison'", (attempt,))
    appender = side.open()
    appender.recover()
    assert side.entries() == []
    raw = appender.replies.seen("poison")
    assert raw is not None and "gave up after 3 failed attempts" in result(raw).error


@pytest.mark.parametrize(
    "body, reason",
    [(b"\xc1", "not an append request"), (append_request([]), "at least one entry")],
)
def test_a_bad_request_is_refused_and_nothing_is_appended(side: Side, body: bytes, reason: str) -> None:
    appender = side.open()
    with pytest.raises(ValueError, match=reason):
        appender.handle(Request("bad", SERVICE, body))
    assert side.entries() == []
    assert side.state is not None and side.state.get("bad") is None  # a fixed copy may be sent later


@pytest.fixture
def served(side: Side, run_dir: Path) -> Iterator[LogAppender]:
    with log_service(side, run_dir) as appender:
        yield appender


def test_a_client_appends_over_the_bus(served: LogAppender, side: Side, run_dir: Path) -> None:
    with LogClient(run_dir, sender="github") as client:
        assert client.append(b"one") == AppendResult(0, 1)
        assert client.append([b"two", b"three"], request_id="github/7") == AppendResult(1, 2)
        assert client.append([b"two", b"three"], request_id="github/7") == AppendResult(1, 2)
    assert side.entries() == [b"one", b"two", b"three"]


def test_a_client_hears_why_an_append_was_refused(served: LogAppender, run_dir: Path) -> None:
    with LogClient(run_dir) as client, pytest.raises(LogAppendError, match="at least one entry"):
        client.append([])


def test_a_client_without_a_log_service_times_out(run_dir: Path) -> None:
    with LogClient(run_dir, timeout_s=0.1, retries=1) as client, pytest.raises(RequestTimeout):
        client.append(b"one")
