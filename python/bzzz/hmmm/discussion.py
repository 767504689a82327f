"""The claimant's side of an issue's discussion: post the plan, hear the peers, decide.

    verdict = Discussion(channel, issue, plan, settings, thinker).run(stop)

1. The plan goes out as revision 1 (`query_type` "plan").
2. The objection period (`window_s`) runs from the latest revision. Meanwhile, each message
   from a peer is handled as it arrives:
   * **objection**: blocks until this agent rules on it (its model: `Thinker.rule`). A valid
     objection makes a new revision, posted as a reply to it, and the period starts again
     (every earlier objection was to an older plan); an objection judged wrong is answered
     with why, and no longer blocks. One the model cannot rule on, or past `max_revisions`,
     stands.
   * **question**: answered (`Thinker.answer`) when the issue and plan tell; a question that
     needs a person (the model says so, the asker marks it `needs_human`, or there is no model)
     is escalated and answered with "asked a human".
   * **suggestion / correction**: kept as notes for the work; **ack**: counted.
   An objector withdraws its objection with an `ack` in reply to it.
3. The verdict: proceed once the period has passed with no objection standing. An objection
   still standing then, or the discussion's TTL (`ttl_s`) running out first (a discussion
   kept going by revision after revision), ends it without proceeding, and the disagreement
   is escalated. A stopped task ends it quietly.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from bzzz.hmmm.messages import Message, QueryType
from bzzz.hmmm.thinking import Issue, Thinker

log = structlog.get_logger("bzzz.hmmm")


class DiscussionClosed(Exception):
    """The mesh's safeguards refuse more messages in this discussion (its TTL or message cap)."""


@dataclass(frozen=True)
class DiscussionSettings:
    window_s: float = 30.0
    ttl_s: float = 3600.0
    max_revisions: int = 3


@dataclass(frozen=True)
class Verdict:
    proceed: bool
    plan: str
    revision: int
    reason: str
    channel: str
    notes: tuple[str, ...] = ()
    acks: tuple[str, ...] = ()
    escalated: tuple[str, ...] = ()  # msg_ids of the escalations this discussion sent

    def as_dict(self) -> dict[str, Any]:
        return {
            "proceed": self.proceed,
            "plan": self.plan,
            "revision": self.revision,
            "reason": self.reason,
            "channel": self.channel,
            "notes": list(self.notes),
            "acks": list(self.acks),
            "escalated": list(self.escalated),
        }


class Channel(Protocol):
    """How a discussion speaks: post on the issue's channel, escalate to people."""

    name: str
    inbox: queue.Queue[Message]

    def post(
        self,
        query_type: QueryType,
        text: str,
        *,
        parent_id: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        """The message's msg_id; DiscussionClosed once the mesh admits no more in this discussion."""

    def escalate(self, reason: str, summary: str, messages: list[str]) -> str: ...


@dataclass
class _Standing:
    message: Message
    why: str


@dataclass
class Discussion:
    channel: Channel
    issue: Issue
    plan: str
    settings: DiscussionSettings
    thinker: Thinker
    clock: Callable[[], float] = time.monotonic
    revision: int = 0
    plan_ids: list[str] = field(default_factory=list)
    standing: dict[str, _Standing] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    acks: set[str] = field(default_factory=set)
    escalated: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event | None = None) -> Verdict:
        try:
            return self._run(stop or threading.Event())
        except DiscussionClosed as closed:
            return self._end(
                f"the mesh closed the discussion ({closed}), as its TTL or message cap says", escalate=True
            )

    def _run(self, stop: threading.Event) -> Verdict:
        started = self.clock()
        ttl_end = started + self.settings.ttl_s
        self._post_plan(parent_id=None)
        window_end = self.clock() + self.settings.window_s
        while True:
            now = self.clock()
            if stop.is_set():
                return self._end("the task was stopped", escalate=False)
            if now >= ttl_end:
                return self._end(f"the discussion reached its TTL ({self.settings.ttl_s:g} s)", escalate=True)
            if now >= window_end:
                if not self.standing:
                    return self._verdict(True, "no objection stands after the objection period")
                return self._end("the objection period ended", escalate=True)
            try:
                message = self.channel.inbox.get(timeout=max(0.01, min(window_end - now, ttl_end - now, 0.25)))
            except queue.Empty:
                continue
            self.seen.append(message.msg_id)
            if self._handle(message):
                window_end = self.clock() + self.settings.window_s

    # --- one message ------------------------------------------------------------------

    def _handle(self, message: Message) -> bool:
        """Act on one peer message; True if it led to a new revision (the period restarts)."""
        who = message.node_id
        match message.query_type:
            case "objection":
                return self._objection(message)
            case "question":
                self._question(message)
            case "suggestion" | "correction":
                self.notes.append(f"{message.query_type} from {who}: {message.text}")
            case "ack":
                if message.parent_id == self.plan_ids[-1]:
                    self.acks.add(who)
                standing = self.standing.get(message.parent_id or "")
                if standing is not None and standing.message.node_id == who:
                    del self.standing[message.parent_id or ""]  # the objector withdrew it
            case "plan":
                # Claims make this impossible; if it happens anyway, people must look.
                log.warning(
                    "another agent posts a plan for an issue this agent holds", issue=self.issue.number, other=who
                )
                self._escalate(
                    "two agents plan the same issue",
                    f"{who} posted a plan for an issue this agent claimed:\n\n{message.text[:1000]}",
                )
            case _:
                pass  # answers and help between peers are in the transcript; nothing to decide
        return False

    def _objection(self, message: Message) -> bool:
        if message.parent_id is not None and message.parent_id in self.plan_ids[:-1]:
            return False  # to a plan already revised: the revision answers it (the objector may object again)
        ruling = self.thinker.rule(self.issue, self.plan, message.text)
        if ruling is None:
            self.standing[message.msg_id] = _Standing(message, "this agent's model could not rule on it")
            self.channel.post(
                "answer",
                "This agent cannot rule on this objection; it stands, and the task waits.",
                parent_id=message.msg_id,
            )
            return False
        if not ruling.revise:
            self.standing.pop(message.msg_id, None)
            self.channel.post("answer", f"The plan stands: {ruling.text}", parent_id=message.msg_id)
            return False
        if self.revision >= self.settings.max_revisions:
            self.standing[message.msg_id] = _Standing(message, f"already revised {self.revision - 1} time(s)")
            self.channel.post(
                "answer",
                f"This objection is right, but the plan has been revised "
                f"{self.revision - 1} time(s) already; it stands, and a human decides.",
                parent_id=message.msg_id,
            )
            return False
        self.plan = ruling.text
        self.standing.clear()  # every standing objection was to the plan just replaced
        self._post_plan(parent_id=message.msg_id)
        return True

    def _question(self, message: Message) -> bool:
        needs_human = bool(message.parameters.get("needs_human"))
        answer = None if needs_human else self.thinker.answer(self.issue, self.plan, message.text)
        if answer is None or answer.human:
            why = answer.text if answer is not None else "this agent cannot answer it from the issue"
            escalation = self._escalate(
                "a question needs a human", f"{message.node_id} asks: {message.text}\n\n({why})", [message.msg_id]
            )
            self.channel.post(
                "answer",
                f"Asked a human (escalation {escalation}); going ahead with the plan meanwhile.",
                parent_id=message.msg_id,
                parameters={"escalation": escalation},
            )
            self.notes.append(f"open question from {message.node_id}, escalated: {message.text}")
        else:
            self.channel.post("answer", answer.text, parent_id=message.msg_id)
        return False

    # --- out --------------------------------------------------------------------------

    def _post_plan(self, parent_id: str | None) -> None:
        self.revision += 1
        msg_id = self.channel.post(
            "plan",
            self.plan,
            parent_id=parent_id,
            parameters={
                "revision": self.revision,
                "window_ms": int(self.settings.window_s * 1000),
                "repo": self.issue.repo,
                "number": self.issue.number,
                "title": self.issue.title[:200],
            },
        )
        self.plan_ids.append(msg_id)
        log.info("plan posted", issue=self.issue.number, revision=self.revision, msg_id=msg_id)

    def _escalate(self, reason: str, summary: str, messages: list[str] | None = None) -> str:
        msg_id = self.channel.escalate(reason, summary, (messages or []) + self.plan_ids)
        self.escalated.append(msg_id)
        return msg_id

    def _end(self, why: str, *, escalate: bool) -> Verdict:
        if not self.standing:
            return self._verdict(False, why)
        objections = "\n".join(
            f"- {s.message.node_id}: {s.message.text[:500]} ({s.why})" for s in self.standing.values()
        )
        if escalate:
            self._escalate(
                "a discussion ended without agreement",
                f"{why}, with objections standing:\n{objections}",
                list(self.standing),
            )
        return self._verdict(False, f"{why}, with {len(self.standing)} objection(s) standing")

    def _verdict(self, proceed: bool, reason: str) -> Verdict:
        log.info("discussion decided", issue=self.issue.number, proceed=proceed, reason=reason, revision=self.revision)
        return Verdict(
            proceed,
            self.plan,
            self.revision,
            reason,
            self.channel.name,
            tuple(self.notes),
            tuple(sorted(self.acks)),
            tuple(self.escalated),
        )
