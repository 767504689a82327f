"""The reporter against a real forge process: every write lands exactly once, whatever fails."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from github import Github
from github.GithubException import GithubException

from bzzz.github.reporter import MAX_BODY_CHARS, DeliveryReport, Reporter, _classify, op_marker, redact
from bzzz.state import WorkerState
from tests.forge.harness import Forge, start_forge, stop_forge

REPO = "alice/widgets"
LOG_FIELDS = {"event", "log_level", "op", "key", "status", "id", "attempts", "delay_s", "number"}


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = start_forge(tmp_path_factory.mktemp("forge"))
    yield running
    stop_forge(running)


def client(forge: Forge, token: str = "agent-1-token") -> Github:
    """As the reporter expects it: no retries of its own, a short timeout (and no pacing, for speed)."""
    return forge.github(token, retry=None, timeout=5, seconds_between_requests=None, seconds_between_writes=None)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[WorkerState]:
    with WorkerState.for_worker(tmp_path, "agent-1") as s:
        yield s


@pytest.fixture
def reporter(forge: Forge, state: WorkerState) -> Reporter:
    return Reporter(state, client(forge), agent="agent-1")


def comments(forge: Forge, number: int, marker: str | None = None) -> list[Any]:
    issue = client(forge, "alice-token").get_repo(REPO).get_issue(number)
    return [c for c in issue.get_comments() if marker is None or marker in c.body]


def issues_with(forge: Forge, marker: str) -> list[Any]:
    repo = client(forge, "alice-token").get_repo(REPO)
    mine = repo.get_issues(state="all", creator="agent-1")  # type: ignore[arg-type]
    return [i for i in mine if marker in (i.body or "")]


def set_faults(forge: Forge, **settings: object) -> None:
    forge.call("PUT", "/_forge/faults", token="alice-token", json=settings).raise_for_status()


def force_due(state: WorkerState) -> None:
    """Skip the backoff waits."""
    with state.transaction() as db:
        db.execute("UPDATE outbox SET next_attempt_at = 0 WHERE acked_at IS NULL")


def unack(state: WorkerState, id: int) -> None:
    """As if the worker had been killed after the POST, before its ack committed."""
    with state.transaction() as db:
        db.execute("UPDATE outbox SET acked_at = NULL WHERE id = ?", (id,))


def test_redact() -> None:
    assert redact("x ghp_abc and ghp_abcdef y", ["ghp_abc", "ghp_abcdef", ""]) == "x [REDACTED] and [REDACTED] y"
    assert redact("nothing here", []) == "nothing here"
    assert redact("a.b.c.d a*b*c*d", ["a.b.c.d"]) == "[REDACTED] a*b*c*d"  # literal, not a pattern
    # Every form (bzzz.redaction): here the token's hex; too short a secret is refused, not ignored.
    assert redact("x 6768705f616263 y", ["ghp_abc"]) == "x [REDACTED] y"
    with pytest.raises(ValueError, match="too short"):
        redact("a.b a*b", ["a.b"])


def test_a_comment_is_posted_once(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    key = "claim-comment:alice/widgets#1:c1"
    first = reporter.comment(REPO, 1, "Claimed by agent-1.", key=key)
    assert reporter.comment(REPO, 1, "Claimed by agent-1.", key=key) == first  # enqueued twice: harmless
    assert reporter.deliver() == DeliveryReport(delivered=1)
    assert reporter.deliver() == DeliveryReport()
    assert reporter.comment(REPO, 1, "Claimed by agent-1.", key=key) == first  # and after delivery too
    assert reporter.deliver() == DeliveryReport()

    [posted] = comments(forge, 1, op_marker(key))
    assert posted.user.login == "agent-1"
    assert posted.body == f"Claimed by agent-1.\n\n{op_marker(key)}"


def test_a_long_body_is_truncated_to_fit(forge: Forge, reporter: Reporter) -> None:
    key = "long:alice/widgets#1"
    reporter.comment(REPO, 1, "x" * (MAX_BODY_CHARS + 10), key=key)
    assert reporter.deliver() == DeliveryReport(delivered=1)
    [posted] = comments(forge, 1, op_marker(key))
    assert len(posted.body) <= MAX_BODY_CHARS and posted.body.endswith(f"*(truncated)*\n\n{op_marker(key)}")


def test_an_outage_is_waited_out(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    key = "progress:alice/widgets#2:outage"
    set_faults(forge, outages=[[0, 3]])
    outage_over = time.monotonic() + 3.2
    try:
        reporter.comment(REPO, 2, "Working on it.", key=key)
        report = reporter.deliver()
        assert report == DeliveryReport(retrying=1)
        [item] = state.pending(now=float("inf"))
        assert item.attempts == 1 and item.next_attempt_at > time.time()  # backing off
        time.sleep(max(0.0, outage_over - time.monotonic()))
        assert comments(forge, 2, op_marker(key)) == []  # nothing was posted during the outage
        time.sleep(max(0.0, item.next_attempt_at - time.time()))
        assert reporter.deliver() == DeliveryReport(delivered=1)
    finally:
        set_faults(forge)
    assert reporter.deliver() == DeliveryReport()
    assert len(comments(forge, 2, op_marker(key))) == 1


def test_a_crash_between_post_and_ack_does_not_post_twice(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    key = "result:alice/widgets#3:crash"
    id = reporter.comment(REPO, 3, "Done: see the pull request.", key=key)
    assert reporter.deliver() == DeliveryReport(delivered=1)
    unack(state, id)
    [item] = state.pending()
    assert item.attempts == 0  # what a kill after the POST leaves: no failed attempt on record

    with structlog.testing.capture_logs() as logs:
        assert reporter.deliver() == DeliveryReport(delivered=1)
    assert [e["status"] for e in logs] == ["already-posted"]
    assert len(comments(forge, 3, op_marker(key))) == 1
    assert state.pending(now=float("inf")) == []


def test_a_restarted_reporter_delivers_what_was_left(forge: Forge, tmp_path: Path) -> None:
    gh = client(forge)
    with WorkerState.for_worker(tmp_path, "agent-1") as before:
        first = Reporter(before, gh, agent="agent-1")
        first.comment(REPO, 2, "Step 1 done.", key="restart:1")
        assert first.deliver() == DeliveryReport(delivered=1)
        first.comment(REPO, 2, "Step 2 done.", key="restart:2")
        first.comment(REPO, 3, "Picked up.", key="restart:3")
    # the worker dies here with two comments enqueued, not delivered

    with WorkerState.for_worker(tmp_path, "agent-1") as after:
        second = Reporter(after, gh, agent="agent-1")
        assert second.deliver() == DeliveryReport(delivered=2)
        assert second.deliver() == DeliveryReport()
    for number, key in ((2, "restart:1"), (2, "restart:2"), (3, "restart:3")):
        assert len(comments(forge, number, op_marker(key))) == 1


def test_follow_up_issue_and_labels(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    key = "split:alice/widgets#1:part-2"
    id = reporter.open_issue(REPO, "Document --verbose", "Split from #1.", ["bzzz-task"], key=key)
    assert reporter.open_issue(REPO, "Document --verbose", "Split from #1.", ["bzzz-task"], key=key) == id
    assert reporter.deliver() == DeliveryReport(delivered=1)
    unack(state, id)  # and a crash before the ack
    assert reporter.deliver() == DeliveryReport(delivered=1)
    [issue] = issues_with(forge, op_marker(key))
    assert issue.title == "Document --verbose" and issue.user.login == "agent-1"
    assert [label.name for label in issue.labels] == ["bzzz-task"]

    reporter.add_labels(REPO, issue.number, ["bug", "bzzz-task"], key=f"labels:{issue.number}:1")
    reporter.remove_label(REPO, issue.number, "bug", key=f"unlabel:{issue.number}:1")
    reporter.remove_label(REPO, issue.number, "bug", key=f"unlabel:{issue.number}:2")  # gone already: done
    with structlog.testing.capture_logs() as logs:
        assert reporter.deliver() == DeliveryReport(delivered=3)
    assert [e["status"] for e in logs] == ["applied", "applied", "already-absent"]
    labels = client(forge, "alice-token").get_repo(REPO).get_issue(issue.number).labels
    assert [label.name for label in labels] == ["bzzz-task"]


def test_operations_on_one_issue_keep_their_order(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    first = reporter.add_labels(REPO, 2, ["bug"], key="order:add")
    reporter.remove_label(REPO, 2, "bug", key="order:remove")
    reporter.comment(REPO, 3, "Other issue.", key="order:other")
    state.nack(first, 60)  # the addition failed and waits for its retry
    assert reporter.deliver() == DeliveryReport(delivered=1, held=1)  # the removal may not overtake it
    force_due(state)
    assert reporter.deliver() == DeliveryReport(delivered=2)
    labels = client(forge, "alice-token").get_repo(REPO).get_issue(2).labels
    assert "bug" not in [label.name for label in labels]


def test_permanent_failures_are_recorded_not_retried(forge: Forge, state: WorkerState, reporter: Reporter) -> None:
    reporter.comment("alice/nope", 1, "Into the void.", key="dead:repo")
    reporter.comment(REPO, 999, "No such issue.", key="dead:issue")
    stranger = Reporter(state, client(forge, "stranger-token"), agent="stranger")
    stranger.add_labels(REPO, 1, ["bug"], key="dead:no-push")
    with structlog.testing.capture_logs() as logs:
        assert stranger.deliver() == DeliveryReport(failed=3)
    assert [(e["log_level"], e["key"], e["status"]) for e in logs] == [
        ("error", "dead:repo", 404),
        ("error", "dead:issue", 404),
        ("error", "dead:no-push", 403),
    ]
    assert state.pending(now=float("inf")) == []
    assert reporter.deliver() == DeliveryReport()

    bad_token = Reporter(state, client(forge, "revoked-token"), agent="agent-1")
    bad_token.comment(REPO, 1, "Who am I?", key="dead:token")
    assert bad_token.deliver() == DeliveryReport(failed=1)
    assert bad_token.deliver() == DeliveryReport()


def test_a_spent_rate_limit_waits_for_its_reset(tmp_path: Path, state: WorkerState) -> None:
    limited = start_forge(tmp_path / "limited", "--rate-limit", "2")
    try:
        reporter = Reporter(state, client(limited), agent="agent-1")
        reporter.comment(REPO, 1, "One.", key="rate:1")  # a lookup and a POST: the whole budget
        reporter.comment(REPO, 1, "Two.", key="rate:2")
        assert reporter.deliver() == DeliveryReport(delivered=1, retrying=1)
        [item] = state.pending(now=float("inf"))
        assert item.key == "rate:2" and 3000 < item.next_attempt_at - time.time() <= 3660  # X-RateLimit-Reset
    finally:
        stop_forge(limited)


def test_retry_after_is_obeyed() -> None:
    secondary = GithubException(403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "7"})
    assert (_classify(secondary).retry, _classify(secondary).delay_s) == (True, 7.0)
    forbidden = GithubException(403, {"message": "Must have push access to repository"}, {})
    assert not _classify(forbidden).retry
    assert _classify(GithubException(502, None, {})).retry


def test_flaky_github_gets_every_comment_exactly_once(tmp_path: Path, state: WorkerState) -> None:
    flaky = start_forge(tmp_path / "flaky", "--error-rate", "0.5", "--fault-seed", "3")
    try:
        reporter = Reporter(state, client(flaky), agent="agent-1")
        keys = {f"flaky:{i}": 1 + i % 3 for i in range(20)}
        for key, number in keys.items():
            reporter.comment(REPO, number, f"Comment {key}.", key=key)
        total = DeliveryReport()
        for _ in range(500):
            force_due(state)
            r = reporter.deliver()
            total = DeliveryReport(
                *(
                    a + b
                    for a, b in zip(
                        (total.delivered, total.retrying, total.failed, total.held),
                        (r.delivered, r.retrying, r.failed, r.held),
                        strict=True,
                    )
                )
            )
            if state.counts()["pending"] == 0:
                break
        assert total.delivered == 20 and total.failed == 0 and total.retrying > 0
        set_faults(flaky)
        for key, number in keys.items():
            assert len(comments(flaky, number, op_marker(key))) == 1, key
        assert sum(c.user.login == "agent-1" for n in (1, 2, 3) for c in comments(flaky, n)) == 20
    finally:
        stop_forge(flaky)


def test_tokens_never_reach_logs_github_or_the_state_file(forge: Forge, state: WorkerState) -> None:
    reporter = Reporter(state, client(forge), agent="agent-1", secrets=["hunter2-extra"])
    with structlog.testing.capture_logs() as logs:
        set_faults(forge, outages=[[0, 30]])
        try:
            reporter.comment(REPO, 1, "env: GITHUB_TOKEN=agent-1-token PASS=hunter2-extra", key="leak:agent-1-token")
            reporter.open_issue(REPO, "agent-1-token in a title", "body", [], key="leak:title")
            assert reporter.deliver() == DeliveryReport(retrying=2)
        finally:
            set_faults(forge)
        force_due(state)
        assert reporter.deliver() == DeliveryReport(delivered=2)
        reporter.comment("alice/nope", 1, "agent-1-token", key="leak:dead:agent-1-token")
        assert reporter.deliver() == DeliveryReport(failed=1)
    assert logs and all(set(e) <= LOG_FIELDS for e in logs)
    assert "agent-1-token" not in repr(logs) and "hunter2" not in repr(logs)
    assert {e["key"] for e in logs} == {"leak:[REDACTED]", "leak:title", "leak:dead:[REDACTED]"}

    [posted] = comments(forge, 1, op_marker("leak:agent-1-token"))
    assert posted.body.startswith("env: GITHUB_TOKEN=[REDACTED] PASS=[REDACTED]\n")
    [issue] = issues_with(forge, op_marker("leak:title"))
    assert issue.title == "[REDACTED] in a title"
    with state.transaction() as db:
        payloads = b"".join(row[0] for row in db.execute("SELECT payload FROM outbox"))
    assert b"agent-1-token" not in payloads and b"hunter2" not in payloads
