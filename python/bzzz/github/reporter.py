"""What an agent tells GitHub, through the outbox: never lost, never posted twice.

Why. An agent's comments (claimed, progress, outcome), the follow-up issues of a split task and
its labels are the record people and other agents act on. GitHub is down for minutes now and
then, rate-limits, answers 5xx after doing the work; the worker may be killed at any instant. So
a write is not made where it is decided: `Reporter.comment()` and friends enqueue it into the
worker's outbox (`WorkerState`, topic "github"), in the caller's transaction if it has one, and
`Reporter.deliver()` performs it later and acks it once GitHub has it.

Exactly once. The outbox alone gives at least once: a kill between a POST and its ack posts again.
So every comment and issue body ends with a hidden line `<!-- bzzz:op=<sha256(key)[:32]> -->`,
and before each POST the deliverer lists the agent's comments on that issue (or the agent's
issues in that repository, `state=all`) and posts only if none carries the marker. It looks
*always*, not only when `attempts > 0`: a kill between the POST and the ack leaves attempts at 0,
and with `synchronous=NORMAL` a power loss can roll a nack or ack back too; GitHub itself is the
only evidence that survives every failure. That costs one GET per comment or issue, kept small
by `since` (the item's enqueue time minus `clock_skew_s`). Labels need no marker: adding a label
twice is a no-op, and removing one that is gone (404 "Label does not exist") counts as done.

What that argument needs from the caller:

- One deliverer per state file at a time (two could both look, both miss, both post); one
  `Reporter` serializes its own `deliver()` calls.
- A PyGithub client that fails fast and never re-sends a POST by itself: `retry=None` (or a
  small `urllib3.Retry` whose `allowed_methods` leaves out POST) and a `timeout` of a few
  seconds. A transport retry of a POST is a second POST no lookup precedes; PyGithub's default
  retry would also hold `deliver()` for minutes during an outage. The outbox's backoff retries.
- A POST that timed out or got a 500/502/504 may still land on GitHub's side a little later, so
  the retry after such a failure waits at least `settle_s` before its lookup.

Failures. Connection errors, timeouts, 5xx, 429 and rate-limit 403s are retried with the
outbox's exponential backoff (`nack`), or as long as `Retry-After` / `X-RateLimit-Reset` say.
Anything else (401, 403 without rate limiting, 404, 410, 422, ...) will not get better by
retrying: the item is acked as dead, logged at error level and counted in `failed`.

Order. Operations on one issue are delivered in the order they were enqueued: while an earlier
one waits for its retry, later ones on that issue are held (`held`), so a label removal never
overtakes the addition it undoes.

Secrets. Text is passed through `bzzz.redaction` (the client's token, plus `secrets=`, plus the
secrets registered for the process; raw, base64, hex and URL-encoded) before it is stored in the
outbox, so it never reaches GitHub or the state file; logs carry the operation, the (redacted)
key and the status only. Keys are stored as the caller gave them: build them from names and
numbers, never from task output.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import requests
import structlog
from github import Auth, Github
from github.GithubException import GithubException, RateLimitExceededException
from github.Issue import Issue

from bzzz.github.budget import CommentBudget
from bzzz.github.client import RATE_LIMIT_DEFAULT_S, rate_limited_for
from bzzz.redaction import REDACTED, REDACTOR, Redactor
from bzzz.state import WorkerState
from bzzz.state.store import OutboxItem

TOPIC = "github"
MAX_BODY_CHARS = 65536  # GitHub's limit on a comment or issue body
_TRUNCATED = "\n\n*(truncated)*"
_PAYLOAD_VERSION = 1
_SCAN = 100_000  # undelivered outbox items looked at per deliver(): all of them, in practice
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+")

log = structlog.get_logger("bzzz.github")

OpKind = Literal["comment", "open_issue", "add_labels", "remove_label"]
_KINDS: frozenset[str] = frozenset({"comment", "open_issue", "add_labels", "remove_label"})


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form (see `bzzz.redaction`) of every non-empty secret, and of every secret
    registered for this process, replaced by `[REDACTED]`."""
    return REDACTOR.redact(Redactor(secrets).redact(text))


def op_marker(key: str) -> str:
    """The hidden line that identifies the operation enqueued under `key` on GitHub."""
    return f"<!-- bzzz:op={hashlib.sha256(key.encode()).hexdigest()[:32]} -->"


def _with_marker(body: str, marker: str) -> str:
    return f"{body.rstrip()}\n\n{marker}" if body.strip() else marker


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one `deliver()` did: acked as done, left for a retry, acked as dead, and held back
    behind an earlier operation on the same issue that is still waiting for its retry."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    held: int = 0


@dataclass(frozen=True, slots=True)
class _Op:
    kind: OpKind
    repo: str
    number: int | None = None
    body: str | None = None
    title: str | None = None
    labels: tuple[str, ...] = ()

    def payload(self) -> bytes:
        data: dict[str, Any] = {"v": _PAYLOAD_VERSION, "op": self.kind, "repo": self.repo}
        if self.number is not None:
            data["number"] = self.number
        if self.body is not None:
            data["body"] = self.body
        if self.title is not None:
            data["title"] = self.title
        if self.kind in ("open_issue", "add_labels", "remove_label"):
            data["labels"] = list(self.labels)
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> _Op:
        """ValueError for a payload this version cannot perform (corrupt, or from a newer bzzz)."""
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(data, dict) or data.get("v") != _PAYLOAD_VERSION or data.get("op") not in _KINDS:
            raise ValueError("unknown operation")
        kind, repo, number = data["op"], data.get("repo"), data.get("number")
        body, title, labels = data.get("body"), data.get("title"), data.get("labels", [])
        if not isinstance(repo, str) or not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError("malformed operation")
        if (kind == "open_issue") != (number is None) or (number is not None and not isinstance(number, int)):
            raise ValueError("malformed operation")
        if (kind in ("comment", "open_issue") and not isinstance(body, str)) or (
            kind == "open_issue" and not isinstance(title, str)
        ):
            raise ValueError("malformed operation")
        return cls(kind, repo, number, body, title, tuple(labels))

    @property
    def lane(self) -> tuple[str, int] | None:
        """Operations in one lane (one issue) are delivered in enqueue order."""
        return None if self.number is None else (self.repo.lower(), self.number)


class _OverBudget(Exception):
    """The issue has had its budget of the mesh's comments this hour (`bzzz.github.budget`)."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"over the comment budget for {wait_s:.0f} s")
        self.wait_s = max(1.0, wait_s)


class _WriteError(Exception):
    """The write itself (not a lookup before it) failed: GitHub may have done it anyway."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass(frozen=True, slots=True)
class _Verdict:
    retry: bool
    status: int | str
    delay_s: float | None = None  # None: the outbox's backoff
    unexpected: bool = False  # not an HTTP or network failure: maybe a bug, worth an error line


def _auth_secrets(github: Github) -> list[str]:
    auth = github.requester.auth
    if isinstance(auth, Auth.Token):
        return [auth.token]
    if isinstance(auth, Auth.Login):
        return [auth.password]
    return []


class Reporter:
    """Enqueue GitHub writes durably (`comment`, `open_issue`, `add_labels`, `remove_label`) and
    deliver them exactly once (`deliver`); see the module docstring for the argument.

    `github` is authenticated as `agent` (the login whose comments and issues carry the markers),
    with `retry=None` or a small Retry that never re-sends a POST, and `timeout` of a few seconds,
    e.g. `Github(base_url=..., auth=Auth.Token(t), retry=None, timeout=5)`. `secrets` are redacted
    from all text besides the client's own token (ValueError for one shorter than
    `bzzz.redaction.MIN_SECRET_BYTES`). Every enqueue method takes the caller's
    idempotency `key` and returns the outbox id; enqueueing a key again adds nothing (the first
    enqueue wins) and returns the same id. They may be called inside `state.transaction()`.
    """

    def __init__(
        self,
        state: WorkerState,
        github: Github,
        *,
        agent: str,
        secrets: Iterable[str] = (),
        clock_skew_s: float = 3600.0,
        settle_s: float = 20.0,
        budget: CommentBudget | None = None,
    ) -> None:
        if not agent:
            raise ValueError("agent must be the login the client is authenticated as")
        self.state = state
        self.github = github
        self.agent = agent
        self.clock_skew_s = clock_skew_s
        self.settle_s = settle_s
        self.budget = budget  # None: no limit of its own (the agent passes the mesh's)
        self._redactor = Redactor((*secrets, *_auth_secrets(github)))
        self._lock = threading.Lock()

    # --- enqueue ------------------------------------------------------------------------------

    def comment(self, repo_full_name: str, number: int, body: str, *, key: str) -> int:
        """Post `body` as a comment on issue (or pull request) `number`."""
        return self._put(_Op("comment", _repo(repo_full_name), _number(number), body=self._body(body)), key)

    def open_issue(self, repo_full_name: str, title: str, body: str, labels: Iterable[str] = (), *, key: str) -> int:
        """Open an issue (a follow-up of a split task, say) with these labels."""
        if not title.strip():
            raise ValueError("an issue needs a title")
        op = _Op(
            "open_issue",
            _repo(repo_full_name),
            None,
            body=self._body(body),
            title=self._redact(title),
            labels=self._labels(labels),
        )
        return self._put(op, key)

    def add_labels(self, repo_full_name: str, number: int, labels: Iterable[str], *, key: str) -> int:
        """Add labels to issue `number` (labels it has already stay; none is removed)."""
        names = self._labels(labels)
        if not names:
            raise ValueError("no labels to add")
        return self._put(_Op("add_labels", _repo(repo_full_name), _number(number), labels=names), key)

    def remove_label(self, repo_full_name: str, number: int, label: str, *, key: str) -> int:
        """Remove one label from issue `number` (done already if it does not have it)."""
        names = self._labels([label])
        if not names:
            raise ValueError("no label to remove")
        return self._put(_Op("remove_label", _repo(repo_full_name), _number(number), labels=names), key)

    def _put(self, op: _Op, key: str) -> int:
        if not key:
            raise ValueError("an idempotency key is required")
        return self.state.put(TOPIC, op.payload(), key=key)

    def _redact(self, text: str) -> str:
        return REDACTOR.redact(self._redactor.redact(text))

    def _body(self, body: str) -> str:
        body = self._redact(body)
        room = MAX_BODY_CHARS - len(_with_marker("x", op_marker(""))) + 1  # what the marker line leaves
        return body if len(body) <= room else body[: room - len(_TRUNCATED)] + _TRUNCATED

    def _labels(self, labels: Iterable[str]) -> tuple[str, ...]:
        if isinstance(labels, str):
            raise TypeError("labels must be a list of names, not one string")
        return tuple(dict.fromkeys(self._redact(x) for x in labels if x.strip()))

    # --- deliver ------------------------------------------------------------------------------

    def deliver(self, limit: int = 50) -> DeliveryReport:
        """Perform up to `limit` due operations, oldest first; ack each done (or dead) one, nack
        each that may succeed later. Returns immediately when nothing is due; call it again at
        `state.next_due()`."""
        delivered = retrying = failed = held = attempted = 0
        with self._lock:
            now = time.time()
            waiting: set[tuple[str, int]] = set()  # issues with an earlier operation still pending
            for item in self.state.pending(_SCAN, now=math.inf, topic=TOPIC):
                if item.topic != TOPIC:
                    continue
                try:
                    op = _Op.decode(item.payload)
                except ValueError:
                    self.state.ack(item.id)
                    log.error("github op failed", op="unknown", key=self._key(item), status="undecodable", id=item.id)
                    failed += 1
                    continue
                lane = op.lane
                if item.next_attempt_at > now:
                    if lane is not None:
                        waiting.add(lane)
                    continue
                if lane is not None and lane in waiting:
                    held += 1
                    continue
                if attempted >= limit:
                    break
                attempted += 1
                outcome = self._deliver_one(item, op)
                if outcome == "delivered":
                    delivered += 1
                elif outcome == "failed":
                    failed += 1
                else:
                    retrying += 1
                    if lane is not None:
                        waiting.add(lane)
        return DeliveryReport(delivered, retrying, failed, held)

    def _key(self, item: OutboxItem) -> str:
        return self._redact(item.key or "")

    def _deliver_one(self, item: OutboxItem, op: _Op) -> Literal["delivered", "retrying", "failed"]:
        key = self._key(item)
        try:
            status, number = self._perform(item, op)
        except _OverBudget as over:
            delay = self.state.nack(item.id, over.wait_s)
            log.info(
                "github op waits for the issue's comment budget",
                op=op.kind,
                key=key,
                id=item.id,
                delay_s=None if delay is None else round(delay, 2),
            )
            return "retrying"
        except Exception as error:
            verdict = _classify(error.cause if isinstance(error, _WriteError) else error)
            if verdict.retry:
                delay = verdict.delay_s
                if isinstance(error, _WriteError) and op.kind in ("comment", "open_issue"):
                    delay = max(
                        delay if delay is not None else self.state.backoff_delay(item.attempts + 1), self.settle_s
                    )
                delay = self.state.nack(item.id, delay)
                (log.error if verdict.unexpected else log.warning)(
                    "github op retrying",
                    op=op.kind,
                    key=key,
                    status=verdict.status,
                    id=item.id,
                    attempts=item.attempts + 1,
                    delay_s=None if delay is None else round(delay, 2),
                )
                return "retrying"
            self.state.ack(item.id)
            log.error(
                "github op failed", op=op.kind, key=key, status=verdict.status, id=item.id, attempts=item.attempts + 1
            )
            return "failed"
        self.state.ack(item.id)
        log.info("github op delivered", op=op.kind, key=key, status=status, id=item.id, number=number)
        return "delivered"

    def _perform(self, item: OutboxItem, op: _Op) -> tuple[str, int | None]:
        """Do `op` on GitHub; (what happened, the issue number). Raises what PyGithub raises,
        wrapped in `_WriteError` when it was the write that failed."""
        marker = op_marker(item.key or "")
        since = datetime.fromtimestamp(max(0.0, item.created_at - self.clock_skew_s), tz=UTC)
        if op.kind == "open_issue":
            assert op.title is not None and op.body is not None
            repo = self.github.get_repo(op.repo, lazy=True)
            # PyGithub's hint says NamedUser only; it takes (and asserts for) a login as well
            issues = repo.get_issues(
                state="all",
                creator=self.agent,  # type: ignore[arg-type]
                since=since,
                sort="created",
                direction="desc",
            )
            for issue in issues:
                if self._ours(issue.user, issue.body, marker):
                    return "already-posted", issue.number
            try:
                created = repo.create_issue(op.title, body=_with_marker(op.body, marker), labels=list(op.labels))
            except Exception as error:
                raise _WriteError(error) from error
            return "posted", created.number
        assert op.number is not None
        issue = Issue(
            self.github.requester,
            attributes={"url": f"/repos/{op.repo}/issues/{op.number}", "number": op.number},
            completed=False,
        )
        if op.kind == "comment":
            assert op.body is not None
            now = time.time()
            if self.budget is not None:  # far enough back for the marker and for the budget
                since = min(since, datetime.fromtimestamp(now - self.budget.window_s, tz=UTC))
            comments = list(issue.get_comments(since=since))
            for comment in comments:
                if self._ours(comment.user, comment.body, marker):
                    return "already-posted", op.number
            wait = self.budget.wait_s(comments, now) if self.budget is not None else 0.0
            if wait > 0:
                raise _OverBudget(wait)
            try:
                issue.create_comment(_with_marker(op.body, marker))
            except Exception as error:
                raise _WriteError(error) from error
            return "posted", op.number
        if op.kind == "add_labels":
            issue.add_to_labels(*op.labels)
            return "applied", op.number
        # remove_label; PyGithub's remove_from_labels would leave a "/" in a name unquoted
        try:
            self.github.requester.requestJsonAndCheck(
                "DELETE", f"/repos/{op.repo}/issues/{op.number}/labels/{quote(op.labels[0], safe='')}"
            )
        except GithubException as error:
            if (
                error.status == 404
                and isinstance(error.data, dict)
                and error.data.get("message") == ("Label does not exist")
            ):
                return "already-absent", op.number
            raise
        return "applied", op.number

    def _ours(self, user: Any, body: str | None, marker: str) -> bool:
        """Carries the marker and was written by this agent: anyone can paste a marker."""
        login = getattr(user, "login", None)
        return bool(body) and marker in str(body) and isinstance(login, str) and login.lower() == self.agent.lower()


def _classify(error: Exception) -> _Verdict:
    if isinstance(error, GithubException):
        status = error.status
        wait = rate_limited_for(error)
        if wait is None and isinstance(error, RateLimitExceededException):
            wait = RATE_LIMIT_DEFAULT_S
        if wait is not None:
            return _Verdict(True, status, wait)
        if status >= 500 or status == 408:
            return _Verdict(True, status)
        return _Verdict(False, status)  # 400, 401, 403, 404, 410, 422, ...: retrying will not help
    # Connection refused or reset, timeouts, a broken response; or something unexpected: the
    # backoff keeps retrying it slowly (at most every backoff_max_s) and the log says so.
    if isinstance(error, requests.RequestException | OSError):
        return _Verdict(True, type(error).__name__)
    return _Verdict(True, type(error).__name__, unexpected=True)


def _repo(full_name: str) -> str:
    if not _REPO.fullmatch(full_name):
        raise ValueError(f"{full_name!r} is not an owner/name repository")
    return full_name


def _number(number: int) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise ValueError(f"{number!r} is not an issue number")
    return number


__all__ = ["MAX_BODY_CHARS", "REDACTED", "TOPIC", "DeliveryReport", "Reporter", "op_marker", "redact"]
