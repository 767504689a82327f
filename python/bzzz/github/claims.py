"""Claiming an issue so that no task is ever worked by two agents: assignment is not a lock.

GitHub's add-assignees call adds and never fails because someone else is assigned, so two
agents that assign themselves at once both succeed. The claim is therefore a small protocol
on top of GitHub's own history:

1. **Assign yourself** (only to an open issue nobody is assigned to and that carries no live
   claim; a human assignee means a human has it).
2. **Wait `settle_s`**, then **read back** the issue's assignees and its `assigned` events.
3. **The rule:** among the logins *currently* assigned, the winner is the one whose current
   assignment has the **smallest event id**: the id of the last `assigned` event naming it
   (an assignment with no event, as at issue creation, counts as 0: it was there first).
4. The winner labels the issue (`claim_label`) and comments who took it; every other agent
   unassigns itself, notes the contention in its log, and moves on.

Why this is safe when things misbehave:
- **Clocks:** event ids are given by GitHub in the order its writes commit; no agent's clock
  is consulted, so skewed clocks cannot make two winners.
- **Everyone computes the same answer:** the rule is a pure function of GitHub's history
  (`winner()`), and history only grows. An agent assigned later than the winner sees the
  winner's earlier event whenever it reads, so it can only lose. The winner stays the winner
  until it unassigns itself.
- **Slow or stale reads** (GitHub serves reads from replicas): `settle_s` lets other writes
  land before the read-back, and the winner **re-verifies** with a fresh read before each
  step that has effects (`verify()`: before planning, before executing, before the PR). An
  agent that finds it is no longer the winner stops.
- **Crashed losers** may stay assigned; they never win against an earlier assignment, and the
  lease below clears what they leave behind.
- **Lost responses:** assigning and unassigning are idempotent, so a retried request is harmless.

**Leases.** The claim comment is the lease: the winner edits it every `lease_s / 3`, which moves
its `updated_at`. A claim whose comment has not moved for `lease_s` by GitHub's own clock (the
`Date` of the answer that showed it) has lost its agent: any agent may then release it,
unassigning the holder, removing the label and saying so in a comment. After that the issue
is claimable again, by the same protocol.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from github import Github
from github.GithubException import GithubException

from bzzz.github import metrics
from bzzz.github.budget import CommentBudget
from bzzz.github.client import next_page, server_time

log = structlog.get_logger("bzzz.github")

CLAIM_LABEL = "bzzz:claimed"
FAILED_LABEL = "bzzz-failed"
MARKER = "<!-- bzzz:claim agent={agent} -->"
ENDED = "<!-- bzzz:claim-ended agent={agent} -->"
RELEASED = "<!-- bzzz:released agent={agent} -->"


@dataclass(frozen=True)
class Attempts:
    """An issue's attempts, from its events: how many claims were won (each adds the claim
    label) since a person last asked again (took the failed label off), and when the last one
    ended (the claim label taken off). Every agent reads the same history, so every agent
    counts the same, whoever made the attempts and however often they restarted."""

    made: int
    last_ended: float | None  # epoch, GitHub's clock

    def not_before(self, backoff_s: float, cap_s: float = 3600.0) -> float | None:
        """When the next attempt may start: `backoff_s` after the first ended, doubling."""
        if self.made == 0 or self.last_ended is None:
            return None
        return self.last_ended + min(cap_s, backoff_s * 2.0 ** (self.made - 1))


def attempts(
    events: Iterable[dict[str, Any]], claim_label: str = CLAIM_LABEL, failed_label: str = FAILED_LABEL
) -> Attempts:
    ordered = sorted(events, key=lambda e: int(e.get("id") or 0))
    made, last_ended = 0, None
    for event in ordered:
        name = ((event.get("label") or {}).get("name") or "").casefold()
        kind = event.get("event")
        if name == failed_label.casefold() and kind == "unlabeled":
            made, last_ended = 0, None  # a person asked again: the count starts over
        elif name == claim_label.casefold() and kind == "labeled":
            made += 1
        elif name == claim_label.casefold() and kind == "unlabeled":
            last_ended = _epoch(event.get("created_at"))
    return Attempts(made, last_ended)


def _epoch(stamp: Any) -> float | None:
    try:
        return float(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def winner(assignees: Iterable[str], events: Iterable[dict[str, Any]]) -> str | None:
    """The claim rule (module docs, step 3): who holds the issue, from GitHub's history alone.

    `events` are the issue's events as GitHub returns them (any order): dicts with `id`,
    `event` and `assignee.login`.
    """
    current = {login.lower(): login for login in assignees}
    since: dict[str, int] = dict.fromkeys(current, 0)
    for event in events:
        if event.get("event") != "assigned":
            continue
        login = ((event.get("assignee") or {}).get("login") or "").lower()
        if login in since:
            since[login] = max(since[login], int(event["id"]))
    if not since:
        return None
    return current[min(since, key=lambda login: (since[login], login))]


@dataclass(frozen=True)
class ClaimResult:
    won: bool
    winner: str | None
    contenders: tuple[str, ...]  # everyone assigned at the read-back
    reason: str
    attempt: int = 0  # which attempt this claim is (1 for the first), when won
    retry_in_s: float | None = None  # not claimable before this many seconds (backoff, budget)
    exhausted: bool = False  # every attempt the policy allows was made: the issue has failed


def claim_comment(agent: str, node_id: str, lease_s: float, renewal: int) -> str:
    return (
        f"🐝 Claimed by `{agent}`{f' (node {node_id})' if node_id else ''}: this agent is working on it.\n\n"
        f"The claim is a lease: it is renewed every {lease_s / 3:g} s, and lapses if not renewed for {lease_s:g} s; "
        f"any agent may then release it.\n{MARKER.format(agent=agent)}<!-- renewal={renewal} -->"
    )


class Claimer:
    """One agent's side of the protocol, over PyGithub."""

    def __init__(
        self,
        github: Github,
        login: str,
        *,
        node_id: str = "",
        label: str = CLAIM_LABEL,
        lease_s: float = 300.0,
        settle_s: float = 1.0,
        max_attempts: int = 3,
        backoff_s: float = 60.0,
        budget: CommentBudget | None = None,
    ) -> None:
        self.github, self.login, self.node_id = github, login, node_id
        self.label, self.lease_s, self.settle_s = label, lease_s, settle_s
        self.max_attempts, self.backoff_s = max_attempts, backoff_s
        self.budget = budget or CommentBudget()
        self._renewals: dict[tuple[str, int], int] = {}

    # --- reading GitHub -------------------------------------------------------------------

    def _get(self, url: str, params: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
        headers, data = self.github.requester.requestJsonAndCheck("GET", url, params)
        return headers, data

    def _all(self, url: str) -> tuple[list[dict[str, Any]], float | None]:
        """Every page of a list, and GitHub's clock at the first answer."""
        headers, data = self._get(url, {"per_page": 100})
        items, now = list(data), server_time(headers)
        next_url = next_page(headers)
        while next_url is not None:
            headers, data = self._get(next_url)
            items += data
            next_url = next_page(headers)
        return items, now

    def read(self, repo: str, number: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        _, issue = self._get(f"/repos/{repo}/issues/{number}")
        events, _ = self._all(f"/repos/{repo}/issues/{number}/events")
        return issue, events

    def holder(self, repo: str, number: int) -> str | None:
        issue, events = self.read(repo, number)
        return winner([a["login"] for a in issue.get("assignees") or []], events)

    # --- the protocol ---------------------------------------------------------------------

    def try_claim(self, repo: str, number: int) -> ClaimResult:
        """Steps 1-4 of the protocol, once the failure policy allows another attempt (its
        backoff has passed, attempts are left) and the issue's comment budget has room for a
        claim and its outcome. Raises GithubException when GitHub fails on the way (the caller
        retries later: every step is idempotent)."""
        issue = self._get(f"/repos/{repo}/issues/{number}")[1]
        assigned = [a["login"] for a in issue.get("assignees") or []]
        if issue["state"] != "open":
            return ClaimResult(False, None, tuple(assigned), "the issue is closed")
        if assigned and self.login not in assigned:
            return ClaimResult(False, None, tuple(assigned), f"already assigned to {', '.join(assigned)}")
        events, now = self._all(f"/repos/{repo}/issues/{number}/events")
        now = now if now is not None else time.time()
        made = attempts(events, self.label)
        if made.made >= self.max_attempts and self.login not in assigned:
            return ClaimResult(
                False, None, tuple(assigned), f"all {self.max_attempts} attempts were made", exhausted=True
            )
        not_before = made.not_before(self.backoff_s)
        # The Date header has whole seconds and may be a second stale: a second of slack.
        if not_before is not None and now + 1.0 < not_before and self.login not in assigned:
            return ClaimResult(
                False, None, tuple(assigned), f"attempt {made.made} failed; backing off", retry_in_s=not_before - now
            )
        wait = 0.0
        if int(issue.get("comments") or 0) + 2 > self.budget.per_hour:  # else it cannot be spent: no read
            comments, _ = self._all(f"/repos/{repo}/issues/{number}/comments")
            wait = self.budget.wait_s(comments, now, need=2)
        if wait > 0 and self.login not in assigned:
            return ClaimResult(
                False, None, tuple(assigned), "the issue's comment budget is spent for now", retry_in_s=wait
            )
        self.github.requester.requestJsonAndCheck(
            "POST", f"/repos/{repo}/issues/{number}/assignees", input={"assignees": [self.login]}
        )
        if self.settle_s:
            time.sleep(self.settle_s)
        issue, events = self.read(repo, number)
        contenders = tuple(a["login"] for a in issue.get("assignees") or [])
        if self.login not in contenders:
            return ClaimResult(False, None, contenders, "the assignment did not stick (no push access?)")
        held_by = winner(contenders, events)
        if held_by != self.login:
            self._unassign(repo, number)
            metrics.claim("lost")
            log.info("lost a claim race", repo=repo, issue=number, winner=held_by, contenders=contenders)
            return ClaimResult(False, held_by, contenders, f"{held_by} was assigned first")
        self._mark(repo, number)
        metrics.claim("won")
        return ClaimResult(True, self.login, contenders, "claimed", attempt=made.made + 1)

    def verify(self, repo: str, number: int) -> bool:
        """Is this agent still the holder? Call before every step that has effects."""
        issue, events = self.read(repo, number)
        if issue["state"] != "open":
            return False
        return winner([a["login"] for a in issue.get("assignees") or []], events) == self.login

    def _mark(self, repo: str, number: int) -> None:
        self.github.requester.requestJsonAndCheck(
            "POST", f"/repos/{repo}/issues/{number}/labels", input={"labels": [self.label]}
        )
        self._renewals[(repo, number)] = 0
        body = claim_comment(self.login, self.node_id, self.lease_s, 0)
        self.github.requester.requestJsonAndCheck(
            "POST", f"/repos/{repo}/issues/{number}/comments", input={"body": body}
        )

    def _unassign(self, repo: str, number: int) -> None:
        self.github.requester.requestJsonAndCheck(
            "DELETE", f"/repos/{repo}/issues/{number}/assignees", input={"assignees": [self.login]}
        )

    # --- leases ---------------------------------------------------------------------------

    def _claim_comment(self, repo: str, number: int, agent: str) -> tuple[dict[str, Any] | None, float | None]:
        """`agent`'s live claim comment: its marker in a comment `agent` wrote. Anyone can
        paste the marker; only the agent's own comment is its lease."""
        comments, now = self._all(f"/repos/{repo}/issues/{number}/comments")
        marker = MARKER.format(agent=agent)
        mine = [
            c
            for c in comments
            if marker in (c.get("body") or "")
            and str((c.get("user") or {}).get("login") or "").casefold() == agent.casefold()
        ]
        return (mine[-1] if mine else None), now

    def renew(self, repo: str, number: int) -> bool:
        """Move the lease on; False if the claim comment is gone (the claim was released)."""
        comment, _ = self._claim_comment(repo, number, self.login)
        if comment is None:
            return False
        renewal = self._renewals.get((repo, number), 0) + 1
        self._renewals[(repo, number)] = renewal
        self.github.requester.requestJsonAndCheck(
            "PATCH",
            f"/repos/{repo}/issues/comments/{comment['id']}",
            input={"body": claim_comment(self.login, self.node_id, self.lease_s, renewal)},
        )
        return True

    def complete(self, repo: str, number: int, how: str) -> None:
        """End the lease of a finished claim: the claim comment says so and loses its marker,
        so no peer will ever release it (the issue stays assigned to who did the work)."""
        comment, _ = self._claim_comment(repo, number, self.login)
        if comment is not None:
            self.github.requester.requestJsonAndCheck(
                "PATCH",
                f"/repos/{repo}/issues/comments/{comment['id']}",
                input={"body": f"🐝 Claimed by `{self.login}`: {how}.\n{ENDED.format(agent=self.login)}"},
            )
        self._renewals.pop((repo, number), None)

    def release(self, repo: str, number: int, reason: str, *, holder: str | None = None) -> None:
        """Give up a claim (this agent's, or an expired one of `holder`), saying why.

        Our own claim comment becomes the notice (an edit notifies nobody, a new comment would);
        an expired holder's is deleted, so that it cannot look live, and a comment says why if
        the issue's comment budget has room (the release itself does not wait for it)."""
        holder = holder or self.login
        self.github.requester.requestJsonAndCheck(
            "DELETE", f"/repos/{repo}/issues/{number}/assignees", input={"assignees": [holder]}
        )
        try:
            self.github.requester.requestJsonAndCheck("DELETE", f"/repos/{repo}/issues/{number}/labels/{self.label}")
        except GithubException as error:
            if error.status != 404:  # the label was already gone: fine
                raise
        comment, now = self._claim_comment(repo, number, holder)
        if holder == self.login:
            if comment is not None:
                self.github.requester.requestJsonAndCheck(
                    "PATCH",
                    f"/repos/{repo}/issues/comments/{comment['id']}",
                    input={
                        "body": f"🐝 The claim of `{holder}` was released by this agent: {reason}\n"
                        f"{ENDED.format(agent=holder)}"
                    },
                )
        else:
            if comment is not None:
                try:
                    self.github.requester.requestJsonAndCheck(
                        "DELETE", f"/repos/{repo}/issues/comments/{comment['id']}"
                    )
                except GithubException as error:
                    if error.status != 404:  # another agent released it at the same time
                        raise
            comments, now = self._all(f"/repos/{repo}/issues/{number}/comments")
            if self.budget.wait_s(comments, now if now is not None else time.time()) == 0:
                self.github.requester.requestJsonAndCheck(
                    "POST",
                    f"/repos/{repo}/issues/{number}/comments",
                    input={
                        "body": f"🐝 The claim of `{holder}` was released by `{self.login}`: {reason}\n"
                        f"{RELEASED.format(agent=self.login)}"
                    },
                )
        self._renewals.pop((repo, number), None)
        metrics.claim("released" if holder == self.login else "reaped")
        log.info("claim released", repo=repo, issue=number, holder=holder, reason=reason)

    def attempts_made(self, repo: str, number: int) -> int:
        """Attempts at the issue so far (this claim's included), by its events."""
        events, _ = self._all(f"/repos/{repo}/issues/{number}/events")
        return attempts(events, self.label).made

    def fail(self, repo: str, number: int, reason: str) -> None:
        """End our claim for good: the failed label first, so that no agent takes the issue in
        the moment between, then the claim given back."""
        self.mark_failed(repo, number)
        self.release(repo, number, reason)

    def mark_failed(self, repo: str, number: int) -> None:
        self.github.requester.requestJsonAndCheck(
            "POST", f"/repos/{repo}/issues/{number}/labels", input={"labels": [FAILED_LABEL]}
        )

    def unmark_failed(self, repo: str, number: int) -> None:
        try:
            self.github.requester.requestJsonAndCheck("DELETE", f"/repos/{repo}/issues/{number}/labels/{FAILED_LABEL}")
        except GithubException as error:
            if error.status != 404:  # another agent took it off first
                raise

    def expired_holder(self, repo: str, number: int, assignees: Sequence[str]) -> str | None:
        """The holder of a claim on this issue whose lease ran out by GitHub's clock, if any."""
        for agent in assignees:
            if agent == self.login:
                continue
            comment, now = self._claim_comment(repo, number, agent)
            if comment is None or now is None:
                continue
            renewed = datetime.fromisoformat(comment["updated_at"].replace("Z", "+00:00")).timestamp()
            if now - renewed > self.lease_s:
                return agent
        return None


__all__ = ["CLAIM_LABEL", "FAILED_LABEL", "Attempts", "ClaimResult", "Claimer", "attempts", "claim_comment", "winner"]
