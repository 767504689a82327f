"""The github worker's loop: find work, claim it, keep the claim alive, report, let go.

One `step()` does a little of each, so a worker can heartbeat between steps:

1. **deliver** what the reporter has queued (comments, labels) if GitHub answers;
2. **renew** the leases of held claims (every `lease_s / 3`); a claim found released meanwhile
   is dropped, and its task told to stop;
3. **collect** finished tasks: their outcome is queued for GitHub (once, by the reporter) and the
   claim is closed (`done`, or released if the task failed and is to be retried by someone);
4. **poll** (every `poll_interval_s`, conditionally: a 304 costs no rate limit) the configured
   repositories; **reap** claims of other agents whose lease ran out; and **claim** one issue
   this agent can do, while it holds fewer than `max_tasks`.

**Approval** (when `trusted_authors` or `trusted_labels` are set; `bzzz.github.approval`). An
issue's commands come from whoever wrote it, and a trusted label does not pin what it says: an
issue is claimed only if `decide()` approves its current title and body. One that is not is
left alone and told why once per (issue, digest) across the mesh: the comment carries
`<!-- bzzz:approval-needed <digest> -->`, and no agent posts it where a comment by a
collaborator (or itself) already does; a stranger's comment with the marker silences nothing.
Its verdict is kept until the issue changes (`updated_at`, comment count, title, body or
labels), or for `approval_recheck_s`, so an idle repository costs no extra requests; a pin
posted later, or the body edited back to what was approved, makes it claimable again. The
executor decides again on what it actually runs: this check saves claims, it is not the only
one.

**The failure policy**, the same for every agent, with its state on GitHub so that all agents
see it and none forgets it by restarting:

- *Permanent* failures (the task refused: not approved, a program not allowed, a plan rejected,
  a command that failed; `Outcome.retry_elsewhere` false): one comment, the `bzzz-failed` label,
  the claim given back. No agent takes the issue while it carries the label; an edit of its
  text (the comment records the digest of the text that failed) makes an agent take the label
  off, and so does a person who wants it tried again.
- *Passing* failures (GitHub or the executor down, no model here, a change no model got right):
  the claim is given back with one comment, and any agent may make the next attempt, after
  `retry_backoff_s` doubled for each attempt so far, with jitter of its own. Attempts are
  counted from the issue's events (each claim adds the claim label), so the whole mesh makes
  at most `max_attempts`; the last one failing is a permanent failure. Each attempt has its own
  request id at the executor, so it really runs again.
- *Comments* per issue are held to `comments_per_hour` for the whole mesh
  (`bzzz.github.budget`): no claim is made without room for it and its outcome, and the
  reporter holds a comment that does not fit until it does.

**Cheap polls.** Only issues with every required label are fetched (GitHub filters them), and
an issue is judged once per version of it (its `updated_at` and the digest of its text), not
on every poll.

Claims live in the worker's SQLite state (table `claims`), so a restarted worker resumes what it
held: it re-verifies each claim against GitHub before it goes on (another agent may have
released it meanwhile, if the restart took longer than the lease).

Work itself is done by `run_task` (the executor, over the bus: `bzzz.executor.service`): it
gets a `Task`, runs in a thread of its own, and returns an `Outcome` (`bzzz.tasks`). GitHub being down does
not stop it: leases cannot be renewed then (the outage would have to outlast the lease for a
peer to release the claim, and peers are down with GitHub too), and what must be posted waits
in the outbox.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import structlog
from github import Github
from github.GithubException import GithubException
from github.Issue import Issue
from github.IssueComment import IssueComment

from bzzz import redaction
from bzzz.capabilities import Capabilities
from bzzz.github import metrics
from bzzz.github.approval import Approval, decide, task_digest
from bzzz.github.budget import CommentBudget
from bzzz.github.claims import FAILED_LABEL, Claimer
from bzzz.github.client import Poller, rate_limited_for
from bzzz.github.reporter import Reporter
from bzzz.github.settings import GithubWorkerSettings
from bzzz.state import WorkerState
from bzzz.tasks import LabelFilter, Outcome, assess, parse_task

log = structlog.get_logger("bzzz.github")

_CLAIMS = """CREATE TABLE IF NOT EXISTS claims (
    repo        TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    title       TEXT    NOT NULL,
    body        TEXT,
    status      TEXT    NOT NULL,     -- held | done | released
    claimed_at  REAL    NOT NULL,     -- wall clock, for the operator
    outcome     TEXT,
    PRIMARY KEY (repo, number, claimed_at)
)"""

GITHUB_DOWN = (GithubException, requests.RequestException)


@dataclass(frozen=True)
class Task:
    """A claimed issue, handed to `run_task`: its text as claimed, and how to tell it to stop."""

    repo: str
    number: int
    title: str
    body: str
    stop: threading.Event = field(compare=False)  # set when the claim is lost: stop working
    attempt_id: str = ""  # this claim's, unique: the executor does each attempt once, and every attempt


@dataclass
class Settings:
    login: str
    repos: Sequence[str]
    capabilities: Capabilities = field(default_factory=Capabilities)
    filters: LabelFilter = field(default_factory=lambda: LabelFilter(include=frozenset({"bzzz-task"})))
    poll_interval_s: float = 15.0
    max_tasks: int = 1
    lease_s: float = 300.0
    settle_s: float = 1.0
    node_id: str = ""
    trusted_authors: frozenset[str] = frozenset()  # with trusted_labels: claim only approved issues
    trusted_labels: frozenset[str] = frozenset()
    approval_recheck_s: float = 600.0  # an unchanged issue that was not approved is looked at again after this
    max_attempts: int = 3  # attempts at an issue that fails transiently, by the whole mesh
    retry_backoff_s: float = 60.0  # after the first failed attempt; doubles with each
    comments_per_hour: int = 6  # the mesh's comments on one issue in an hour (bzzz.github.budget)

    @property
    def checks_approval(self) -> bool:
        return bool(self.trusted_authors or self.trusted_labels)

    @classmethod
    def of(cls, settings: GithubWorkerSettings, node_id: str) -> Settings:
        """The agent's settings from the worker's (`[workers.github.settings]`), on node `node_id`."""
        return cls(
            login=settings.login,
            repos=settings.repos,
            capabilities=Capabilities(models=settings.models, tools=settings.tools, languages=settings.languages),
            filters=LabelFilter(include=frozenset(settings.include_labels), exclude=frozenset(settings.exclude_labels)),
            poll_interval_s=settings.poll_interval_s,
            max_tasks=settings.max_tasks,
            lease_s=settings.lease_s,
            settle_s=settings.settle_s,
            node_id=node_id,
            trusted_authors=frozenset(settings.trust_authors),
            trusted_labels=frozenset(settings.trust_labels),
            max_attempts=settings.max_attempts,
            retry_backoff_s=settings.retry_backoff_s,
            comments_per_hour=settings.comments_per_hour,
        )


@dataclass
class _Held:
    repo: str
    number: int
    claimed_at: float
    task: Task
    future: Future[Outcome] | None = None
    renew_at: float = 0.0


class GithubAgent:
    def __init__(
        self,
        settings: Settings,
        github: Github,
        state: WorkerState,
        run_task: Callable[[Task], Outcome],
        *,
        can_work: Callable[[], bool] = lambda: True,
        journal: Callable[[str, dict[str, Any]], object] | None = None,
        capabilities: Callable[[], Capabilities | None] | None = None,
    ) -> None:
        self.settings, self.github, self.state, self.run_task = settings, github, state, run_task
        self.can_work = can_work  # e.g. "the executor is up": claim nothing this agent cannot start
        # What the agent advertises, read afresh at each poll (None: not known yet); else the settings' own.
        self.capabilities = capabilities or (lambda: settings.capabilities)
        # What this agent decided, for its signed log (the worker's `bzzz.log.journal.Journal`).
        self.journal = journal or (lambda kind, fields: None)
        self.log = log.bind(agent=settings.login)
        budget = CommentBudget(per_hour=settings.comments_per_hour)
        self.claimer = Claimer(
            github,
            settings.login,
            node_id=settings.node_id,
            lease_s=settings.lease_s,
            settle_s=settings.settle_s,
            max_attempts=settings.max_attempts,
            backoff_s=settings.retry_backoff_s,
            budget=budget,
        )
        self.reporter = Reporter(state, github, agent=settings.login, budget=budget)
        # Only issues with every label this agent requires are fetched: an unlabelled one, however
        # large, costs nothing (cheap polls).
        self.pollers = {
            repo: Poller(github, repo, labels=tuple(sorted(settings.filters.include))) for repo in settings.repos
        }
        self.pool = ThreadPoolExecutor(max_workers=max(1, settings.max_tasks), thread_name_prefix="bzzz-task")
        self.held: dict[tuple[str, int], _Held] = {}
        self.next_poll = 0.0
        self.next_reap: dict[str, float] = {}
        # Each issue's verdict, by the version of it that was judged (module docs: cheap polls).
        self._assessed: dict[tuple[str, int], tuple[tuple[Any, ...], str | None]] = {}
        self._failed_seen: dict[tuple[str, int], Any] = {}  # failed issues by the updated_at last read
        self.not_before: dict[tuple[str, int], float] = {}  # monotonic time before which an issue is not tried
        # Issues not approved, by what they looked like then: not asked about again until they change.
        self.unapproved: dict[tuple[str, int], tuple[tuple[Any, ...], float]] = {}
        self._random = random.Random(settings.login)
        with state.transaction() as db:
            db.execute(_CLAIMS)
        metrics.show_states()
        self._resume()
        metrics.tasks_held(len(self.held))

    # --- durable claims -------------------------------------------------------------------

    def _resume(self) -> None:
        with self.state.transaction() as db:
            rows = db.execute(
                "SELECT repo, number, title, body, claimed_at FROM claims WHERE status = 'held'"
            ).fetchall()
        for repo, number, title, body, claimed_at in rows:
            task = Task(repo, int(number), title, body or "", threading.Event(), attempt_id=f"{float(claimed_at)!r}")
            self.held[(repo, int(number))] = _Held(repo, int(number), float(claimed_at), task)
            self.log.info("resuming a claim held before the restart", repo=repo, issue=number)

    def _finished(self) -> set[tuple[str, int]]:
        """Issues this agent has done: still assigned to it (it did the work), never taken again."""
        with self.state.transaction() as db:
            return {(repo, int(n)) for repo, n in db.execute("SELECT repo, number FROM claims WHERE status = 'done'")}

    def _set_status(self, held: _Held, status: str, outcome: str | None = None) -> None:
        with self.state.transaction() as db:
            db.execute(
                "UPDATE claims SET status = ?, outcome = ? WHERE repo = ? AND number = ? AND claimed_at = ?",
                (status, outcome, held.repo, held.number, held.claimed_at),
            )
        metrics.task_ended(status)

    # --- the loop -------------------------------------------------------------------------

    def step(self, now: float | None = None) -> None:
        """One round of the loop (module docs). GitHub failing is logged and tried again later."""
        now = time.monotonic() if now is None else now
        try:
            self._step(now)
        finally:  # bzzz_tasks{state="claimed"}: what is held after the round, however it went
            metrics.tasks_held(len(self.held))

    def _step(self, now: float) -> None:
        try:
            self.reporter.deliver()
        except GITHUB_DOWN as error:  # the reporter classifies its own; this is belt and braces
            self.log.warning("delivery failed", error=str(error))
        for held in list(self.held.values()):
            self._tend(held, now)
        if now >= self.next_poll and all(p.budget.pause_s() == 0 for p in self.pollers.values()):
            self.next_poll = now + self.settings.poll_interval_s
            for repo in self.settings.repos:
                try:
                    self._poll(repo)
                except GITHUB_DOWN as error:
                    wait = rate_limited_for(error)
                    if wait is not None:  # a secondary limit (or 429): no request before GitHub says
                        self.next_poll = now + max(wait, self.settings.poll_interval_s)
                        self.log.warning("GitHub rate-limits this agent; waiting", repo=repo, wait_s=round(wait, 1))
                        return
                    self.log.warning("polling failed; will try again", repo=repo, error=str(error))

    def _tend(self, held: _Held, now: float) -> None:
        with structlog.contextvars.bound_contextvars(task=f"{held.repo}#{held.number}"):
            self._tend_one(held, now)

    def _tend_one(self, held: _Held, now: float) -> None:
        key = (held.repo, held.number)
        if held.future is None:
            try:
                if not self.claimer.verify(held.repo, held.number):
                    self.log.warning(
                        "a claim held before the restart is not ours any more", repo=held.repo, issue=held.number
                    )
                    self._set_status(held, "released", "lost while this agent was away")
                    del self.held[key]
                    return
            except GITHUB_DOWN:
                pass  # start anyway: the claim was ours, and GitHub's history will say if it still is
            held.future = self.pool.submit(self._run, held.task)
            held.renew_at = now + self.settings.lease_s / 3
        if held.future.done():
            self._finish(held)
            return
        if now >= held.renew_at:
            try:
                if not self.claimer.renew(held.repo, held.number):
                    self.log.warning(
                        "our claim was released by a peer; stopping the task", repo=held.repo, issue=held.number
                    )
                    held.task.stop.set()
                    self._set_status(held, "released", "released by a peer")
                    del self.held[key]
                    return
                held.renew_at = now + self.settings.lease_s / 3
            except GITHUB_DOWN as error:
                held.renew_at = now + min(5.0, self.settings.lease_s / 10)
                self.log.warning(
                    "could not renew a lease; will retry", repo=held.repo, issue=held.number, error=str(error)
                )

    def _run(self, task: Task) -> Outcome:
        # In the pool's thread, which has a context of its own: its log lines name the task too.
        with structlog.contextvars.bound_contextvars(task=f"{task.repo}#{task.number}"):
            try:
                return self.run_task(task)
            except Exception as error:  # a task that crashes is a failed task, not a dead worker
                self.log.exception("task failed", repo=task.repo, issue=task.number)
                return Outcome(False, f"the task failed: {type(error).__name__}: {error}", retry_elsewhere=True)

    def _finish(self, held: _Held) -> None:
        """Report the outcome, by the failure policy (module docs): done; failed for good (one
        comment, the failed label, the claim given back); or failed for now (one comment, the
        claim given back for a later attempt by any agent)."""
        assert held.future is not None
        outcome = held.future.result()
        key = f"outcome:{held.repo}#{held.number}:{held.claimed_at}"
        if outcome.ok:  # said at once, whatever GitHub does meanwhile (a key is queued once)
            self.reporter.comment(held.repo, held.number, self._done(outcome), key=key)
        try:
            status, comment = self._settle(held, outcome)
        except GITHUB_DOWN:
            held.future = _settled(outcome)  # settle again next step; never run the task again
            return
        # Queued, not posted: once, whenever GitHub answers (the reporter's outbox).
        self.reporter.comment(held.repo, held.number, comment, key=key)
        self._set_status(held, status, json.dumps({"ok": outcome.ok, "summary": outcome.summary}))
        self.journal(
            "task_finished",
            {"repo": held.repo, "issue": held.number, "ok": outcome.ok, "status": status, "summary": outcome.summary},
        )
        for n, (title, body) in enumerate(outcome.follow_ups):
            self.reporter.open_issue(
                held.repo,
                title,
                f"{body}\n\nSplit from #{held.number}.",
                ["bzzz-task"],
                key=f"follow-up:{held.repo}#{held.number}:{held.claimed_at}:{n}",
            )
        del self.held[(held.repo, held.number)]
        self.log.info("task finished", repo=held.repo, issue=held.number, ok=outcome.ok, status=status)

    def _done(self, outcome: Outcome) -> str:
        return f"✅ Done (`{self.settings.login}`): {outcome.summary}"

    def _settle(self, held: _Held, outcome: Outcome) -> tuple[str, str]:
        """Close the claim on GitHub as the outcome says; (the claim's status, the comment)."""
        me = self.settings.login
        if outcome.ok:
            self.claimer.complete(held.repo, held.number, "done")
            return "done", self._done(outcome)
        made = self.claimer.attempts_made(held.repo, held.number)
        if outcome.retry_elsewhere and made < self.settings.max_attempts:
            wait = min(3600.0, self.settings.retry_backoff_s * 2.0 ** (max(made, 1) - 1))
            self.claimer.release(held.repo, held.number, f"attempt {made} of {self.settings.max_attempts} failed")
            return "released", (
                f"❌ Attempt {made} of {self.settings.max_attempts} failed (`{me}`): {outcome.summary}"
                f"\n\nAny agent may try again in {wait:g} s or more."
            )
        why = (
            f"❌ Could not finish (`{me}`): {outcome.summary}"
            if not outcome.retry_elsewhere
            else f"❌ Could not finish (`{me}`), after {made} attempts: {outcome.summary}"
        )
        digest = task_digest(held.task.title, held.task.body)
        self.claimer.fail(held.repo, held.number, "the task failed")
        return "failed", (
            f"{why}\n\nNo agent takes this issue again until it is edited, or a person removes "
            f"the `{FAILED_LABEL}` label.\n<!-- bzzz:failed digest={digest} -->"
        )

    def _poll(self, repo: str) -> None:
        issues = self.pollers[repo].open_issues()
        now = time.monotonic()
        if now >= self.next_reap.get(repo, 0.0):
            # Reading each claim's comment costs a request; twice a lease is often enough.
            self.next_reap[repo] = now + self.settings.lease_s / 2
            for issue in issues:
                assignees = [a["login"] for a in issue.get("assignees") or []]
                if assignees and self.claimer.label in {label["name"] for label in issue.get("labels") or []}:
                    self._maybe_reap(repo, issue, assignees)
        if len(self.held) >= self.settings.max_tasks or not self.can_work():
            return
        capabilities = self.capabilities()
        if capabilities is None:
            return  # what the agent can do is not known yet: claim nothing
        if capabilities != self.settings.capabilities:
            self.log.info(
                "claiming with the capabilities the agent advertises",
                models=sorted(capabilities.models),
                tools=sorted(capabilities.tools),
            )
            self.settings.capabilities = capabilities
            self._assessed.clear()  # verdicts of other capabilities
        candidates = []
        finished = self._finished()
        for issue in issues:
            key = (repo, int(issue["number"]))
            assignees = [a["login"] for a in issue.get("assignees") or []]
            # Assigned to us but not held: a claim cut short (GitHub failed, or this agent died,
            # between assigning and deciding). Claiming again finishes it; assigning is idempotent.
            if (assignees and self.settings.login not in assignees) or key in self.held or key in finished:
                continue
            if now < self.not_before.get(key, 0.0):
                continue
            labels = [label["name"] for label in issue.get("labels") or []]
            if FAILED_LABEL.casefold() in {label.casefold() for label in labels}:
                self._failed_but_changed(repo, issue)
                continue
            why_not = self._assess(key, issue, labels)
            if why_not is not None:
                continue
            if self.settings.checks_approval and not self._approved(repo, issue, now):
                continue
            candidates.append(issue)
        # Agents that all start with the oldest issue would all contend for it; each agent
        # starts somewhere else among the oldest few, and contention stays the exception.
        window = candidates[: max(4, 2 * self.settings.max_tasks)]
        self._random.shuffle(window)
        for issue in window:
            if len(self.held) >= self.settings.max_tasks:
                return
            number = int(issue["number"])
            result = self.claimer.try_claim(repo, number)
            if result.winner is not None:
                self.journal(
                    "claim_won" if result.won else "claim_lost",
                    {"repo": repo, "issue": number, "winner": result.winner, "contenders": list(result.contenders)},
                )
            if result.won:
                self._hold(repo, issue)
                self.pollers[repo].etag = None  # our own change: look again fresh next time
            elif result.retry_in_s is not None:
                # Jitter, so that the agents of the mesh do not all come back at the same moment.
                wait = result.retry_in_s * (1.0 + 0.25 * self._random.random())
                self.not_before[(repo, number)] = time.monotonic() + wait
                self.log.info(
                    "not claiming an issue yet",
                    repo=repo,
                    issue=number,
                    reason=result.reason,
                    retry_in_s=round(wait, 1),
                )
            elif result.exhausted:
                self.claimer.mark_failed(repo, number)
                self.log.info("an issue ran out of attempts", repo=repo, issue=number, reason=result.reason)

    @property
    def skipped(self) -> dict[tuple[str, int], str]:
        """Issues looked at and not taken, and why (for the operator and the tests)."""
        return {key: why for key, (_, why) in self._assessed.items() if why is not None}

    def _assess(self, key: tuple[str, int], issue: dict[str, Any], labels: list[str]) -> str | None:
        """Why this agent will not take the issue, or None; worked out once per version of it
        (a poll answered from the cache, or an issue that did not change, costs a dict lookup)."""
        version = (issue.get("updated_at"), task_digest(issue["title"], issue.get("body")), tuple(labels))
        cached = self._assessed.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        why_not: str | None = None
        if redaction.contains_secret(f"{issue['title']}\n{issue.get('body') or ''}"):
            # A leaked credential of this agent's: running the task would store it in the
            # agent's state and hand it to a task. Said in the log, not on the issue, where
            # it would tell whoever wrote it that the credential is live.
            why_not = _HOLDS_SECRET
            self.log.warning(
                "not taking an issue: its text holds a secret of this agent; revoke it", repo=key[0], issue=key[1]
            )
        else:
            verdict = assess(
                parse_task(issue["title"], issue.get("body"), labels),
                labels,
                self.settings.capabilities,
                self.settings.filters,
            )
            if not verdict.ok:
                why_not = "; ".join(verdict.reasons)
                self.log.info("not taking an issue", repo=key[0], issue=key[1], reasons=verdict.reasons)
        self._assessed[key] = (version, why_not)
        return why_not

    def _failed_but_changed(self, repo: str, issue: dict[str, Any]) -> None:
        """An issue some agent marked failed is taken again once its text changed since: then
        the label comes off (as a person would take it off to ask again)."""
        key = (repo, int(issue["number"]))
        digest = task_digest(issue["title"], issue.get("body"))
        # GitHub's updated_at has whole seconds: an edit in the second the label went on would
        # not move it, the text's digest does.
        version = (issue.get("updated_at"), digest)
        if self._failed_seen.get(key) == version:
            return
        self._failed_seen[key] = version
        subject = Issue(self.github.requester, attributes=issue, completed=True)
        failed_as = None
        for comment in subject.get_comments():
            if comment.author_association not in _TEAM:
                continue  # a stranger's marker says nothing about what failed
            for match in _FAILED_MARKER.finditer(comment.body or ""):
                failed_as = match.group(1)
        if failed_as is not None and failed_as != digest:
            self.claimer.unmark_failed(repo, key[1])
            self.log.info("a failed issue was edited: it may be tried again", repo=repo, issue=key[1])
            self.pollers[repo].etag = None

    def _approved(self, repo: str, issue: dict[str, Any], now: float) -> bool:
        """Whether `decide()` approves the issue as polled; if not, say why on it, once (module docs)."""
        key = (repo, int(issue["number"]))
        seen = (
            issue.get("updated_at"),
            issue.get("comments"),
            issue.get("title"),
            issue.get("body"),
            tuple(sorted(label["name"] for label in issue.get("labels") or [])),
        )
        cached = self.unapproved.get(key)
        if cached is not None and cached[0] == seen and now < cached[1]:
            return False
        # The polled issue itself, not a fresh read: what is approved is what was looked at.
        subject = Issue(self.github.requester, attributes=issue, completed=True)
        author = str((issue.get("user") or {}).get("login") or "")
        trusted = {login.casefold() for login in self.settings.trusted_authors}
        comments = None if author.casefold() in trusted else list(subject.get_comments())
        approval = decide(
            subject,
            trusted_authors=self.settings.trusted_authors,
            trusted_labels=self.settings.trusted_labels,
            comments=comments,
        )
        if approval.approved:
            self.unapproved.pop(key, None)
            return True
        self.unapproved[key] = (seen, now + self.settings.approval_recheck_s)
        self.log.info(
            "not taking an issue: not approved", repo=repo, issue=key[1], digest=approval.digest, why=approval.why
        )
        self._say_unapproved(repo, key[1], approval, comments or [])
        return False

    def _say_unapproved(self, repo: str, number: int, approval: Approval, comments: list[IssueComment]) -> None:
        marker = approval_marker(approval.digest)
        for comment in comments:
            # Only a collaborator's (an agent pushes, so it is one) or our own: a stranger who
            # posts the marker first must not keep the maintainers from hearing about her edit.
            login = str(getattr(comment.user, "login", "") or "")
            if marker in (comment.body or "") and (
                comment.author_association in _TEAM or login.casefold() == self.settings.login.casefold()
            ):
                return
        self.reporter.comment(
            repo,
            number,
            f"⏸️ Not executed: {approval.why}\n\n{marker}",
            key=f"approval:{repo}#{number}:{approval.digest}",
        )

    def _hold(self, repo: str, issue: dict[str, Any]) -> None:
        claimed_at = time.time()
        number = int(issue["number"])
        with self.state.transaction() as db:
            db.execute(
                "INSERT INTO claims (repo, number, title, body, status, claimed_at) VALUES (?, ?, ?, ?, 'held', ?)",
                (repo, number, issue["title"], issue.get("body"), claimed_at),
            )
        task = Task(
            repo, number, issue["title"], issue.get("body") or "", threading.Event(), attempt_id=f"{claimed_at!r}"
        )
        self.held[(repo, number)] = _Held(repo, number, claimed_at, task)
        self.log.info("claimed an issue", repo=repo, issue=number, title=issue["title"])

    def _maybe_reap(self, repo: str, issue: dict[str, Any], assignees: list[str]) -> None:
        number = int(issue["number"])
        if (repo, number) in self.held:
            return
        expired = self.claimer.expired_holder(repo, number, assignees)
        if expired is not None:
            self.claimer.release(
                repo, number, f"its lease ran out (not renewed for {self.settings.lease_s:g} s)", holder=expired
            )
            self.journal("lease_reaped", {"repo": repo, "issue": number, "holder": expired})
            self.pollers[repo].etag = None

    def release_all(self, reason: str) -> None:
        """Give every held claim back (the agent is shutting down for good, not restarting)."""
        for held in list(self.held.values()):
            held.task.stop.set()
            try:
                self.claimer.release(held.repo, held.number, reason)
                self._set_status(held, "released", reason)
                del self.held[(held.repo, held.number)]
            except GITHUB_DOWN as error:
                self.log.warning(
                    "could not release a claim; its lease will", repo=held.repo, issue=held.number, error=str(error)
                )

    def close(self, *, wait: bool = True) -> None:
        for held in self.held.values():
            held.task.stop.set()
        self.pool.shutdown(wait=wait, cancel_futures=True)


_TEAM = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
_HOLDS_SECRET = "its text holds a secret of this agent"
_FAILED_MARKER = re.compile(r"<!-- bzzz:failed digest=([0-9a-f]{64}) -->")


def approval_marker(digest: str) -> str:
    """The hidden line of the comment that says an issue's version `digest` waits for approval."""
    return f"<!-- bzzz:approval-needed {digest} -->"


def _settled(outcome: Outcome) -> Future[Outcome]:
    future: Future[Outcome] = Future()
    future.set_result(outcome)
    return future


__all__ = ["GithubAgent", "Settings", "Task", "approval_marker"]
