"""The HMMM hub of one agent: routes what the mesh admits, runs this agent's discussions,
reviews its peers' plans, answers and relays help, forwards escalations, and journals it all.

    hub = Hub(node_id, transport, Transcripts(journal), thinker, settings)
    hub.receive(envelope, data)          # every admitted HMMM envelope, from the bus
    verdict = hub.discuss(issue, plan)   # this agent claimed `issue`: talk it over first

Every message this agent sends or receives on an HMMM topic becomes an entry of its signed log
(`hmmm_message`, see `bzzz.hmmm.messages.journal_fields`), recorded through the worker's journal
(`bzzz.log.journal.Journal`), and the entries of each issue are tracked as its transcript: the
range of log entries a pull request links to.

**Following.** An agent that discusses an issue says so in its capability broadcasts
(`hmmm.discussions`); every agent that follows (`hmmm.follows`) joins those channels. Before
posting a plan, the claimant waits (up to `gather_s`) until each live follower is in the
channel's gossip mesh, so the plan is not sent before anyone listens.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from bzzz._core import Envelope, SeenCache
from bzzz.hmmm.discussion import Discussion, DiscussionClosed, DiscussionSettings, Verdict
from bzzz.hmmm.escalation import Escalation, WebhookForwarder
from bzzz.hmmm.helpdesk import HelpAnswer, HelpDesk
from bzzz.hmmm.messages import (
    ESCALATION_TOPIC,
    Message,
    QueryType,
    escalation_payload,
    is_issue_channel,
    issue_channel,
    issue_id,
    journal_fields,
    meta_payload,
)
from bzzz.hmmm.settings import HmmmSettings
from bzzz.hmmm.thinking import Issue, NoThinker, Thinker

log = structlog.get_logger("bzzz.hmmm")

RATE_RETRIES = 10
MAX_FOLLOWED = 64  # channels followed at once; a flood of announcements cannot make us join thousands


class Transport(Protocol):
    """The mesh, as the hub uses it (`bzzz.hmmm.transport.MeshTransport` over the bus)."""

    def publish(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int) -> Envelope: ...
    def forward(self, data: bytes) -> Envelope: ...  # raises RelayRefused
    def join(self, topic: str) -> None: ...
    def leave(self, topic: str) -> None: ...
    def announce(self, follows: bool, discussions: list[str]) -> None: ...
    def channel_peers(self, topic: str) -> set[str]: ...
    def followers(self) -> set[str]: ...


@dataclass
class Transcript:
    first: int | None = None
    last: int | None = None
    entries: int = 0

    def add(self, index: int | None) -> None:
        self.entries += 1
        if index is not None:
            self.first = index if self.first is None else min(self.first, index)
            self.last = index if self.last is None else max(self.last, index)


class Transcripts:
    """Entries recorded through the worker's journal, and each issue's range of them in the log."""

    def __init__(self, journal: Callable[[str, dict[str, Any]], int | None], keep: int = 1024) -> None:
        self._journal = journal
        self._lock = threading.Lock()
        self._transcripts: OrderedDict[str, Transcript] = OrderedDict()
        self._keep = keep

    def record(self, kind: str, fields: dict[str, Any], about: str | None = None) -> int | None:
        with self._lock:  # one append at a time keeps each transcript's entries in order
            index = self._journal(kind, fields)
            if about is not None:
                transcript = self._transcripts.setdefault(about, Transcript())
                self._transcripts.move_to_end(about)
                transcript.add(index)
                while len(self._transcripts) > self._keep:
                    self._transcripts.popitem(last=False)
            return index

    def transcript(self, about: str) -> Transcript:
        with self._lock:
            found = self._transcripts.get(about)
            return Transcript(found.first, found.last, found.entries) if found else Transcript()


def refusal(err: Exception) -> str | None:
    """The core's reason, when the mesh refused to send a message (`... refused (rate): ...`)."""
    reason = getattr(err, "reason", None)
    if isinstance(reason, str):
        return reason
    found = re.search(r"refused \((\w+)\)", str(err))
    return found.group(1) if found else None


def about_task(task_id: str) -> str | None:
    """The issue channel a help request's `task_id` (`owner/repo#n`) belongs to, for its transcript."""
    repo, _, number = task_id.rpartition("#")
    return issue_channel(repo, int(number)) if repo.count("/") == 1 and number.isdigit() else None


class _Own:
    def __init__(self, hub: Hub, issue: Issue) -> None:
        self.hub = hub
        self.issue = issue
        self.name = issue_channel(issue.repo, issue.number)
        self.inbox: queue.Queue[Message] = queue.Queue()

    def post(
        self,
        query_type: QueryType,
        text: str,
        *,
        parent_id: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        for attempt in range(RATE_RETRIES + 1):
            try:
                return self.hub.post(
                    self.name,
                    issue_id(self.issue.repo, self.issue.number),
                    query_type,
                    text,
                    parent_id=parent_id,
                    parameters=parameters,
                )
            except Exception as err:
                reason = refusal(err)
                if reason in ("closed", "participants"):
                    raise DiscussionClosed(reason) from None
                if reason != "rate" or attempt == RATE_RETRIES:
                    raise
                time.sleep(0.5)  # our own gate's rate limit: a token comes back within 1 / rate
        raise AssertionError("unreachable")

    def escalate(self, reason: str, summary: str, messages: list[str]) -> str:
        return self.hub.escalate(self.issue.repo, self.issue.number, reason, summary, messages)


class Hub:
    def __init__(
        self,
        node_id: str,
        transport: Transport,
        transcripts: Transcripts,
        thinker: Thinker | None = None,
        settings: HmmmSettings | None = None,
        *,
        capabilities: Callable[[], frozenset[str]] = frozenset,
        forwarder: WebhookForwarder | None = None,
        clock: Callable[[], float] = time.monotonic,
        ttl_limit: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.node_id = node_id
        self.transport = transport
        self.transcripts = transcripts
        self.thinker = thinker or NoThinker()
        self.settings = settings or HmmmSettings()
        self.forwarder = forwarder if forwarder is not None and forwarder.configured else None
        self.clock = clock
        self.ttl_limit = ttl_limit  # the mesh's discussion TTL: ours must not outlast it
        self._lock = threading.Lock()
        self._own: dict[str, _Own] = {}
        self._followed: dict[str, float] = {}  # channel -> when last announced by its claimant
        # Plans this agent reviewed (gossip may bring one twice); none outlives its discussion.
        self._reviewed = SeenCache(capacity=4096, default_ttl=self.settings.ttl_s)
        self._thinking = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hmmm-think")
        self.help = HelpDesk(
            node_id,
            _HelpSide(self),
            self.thinker,
            capabilities,
            relay=self.settings.relay,
            relay_delay_s=self.settings.relay_delay_s,
            clock=clock,
            think=lambda job: self._thinking.submit(job),
        )

    # --- sending ------------------------------------------------------------------------

    def send(
        self, type: str, topic: str, payload: dict[str, Any], *, about: str | None, ttl: int | None = None
    ) -> Envelope:
        envelope = self.transport.publish(type, topic, payload, ttl=ttl or self.settings.message_ttl_s)
        self.transcripts.record("hmmm_message", journal_fields(envelope, "sent"), about)
        return envelope

    def post(
        self,
        channel: str,
        issue: str,
        query_type: QueryType,
        text: str,
        *,
        parent_id: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> str:
        payload = meta_payload(issue, query_type, text[:8000], parent_id=parent_id, parameters=parameters)
        return self.send("meta_msg", channel, payload, about=channel).msg_id

    def escalate(self, repo: str, number: int, reason: str, summary: str, messages: list[str]) -> str:
        """Ask people: an `escalation` on `bzzz/meta/escalation`, forwarded to webhooks by the agents set up to."""
        envelope = self.send(
            "escalation",
            ESCALATION_TOPIC,
            escalation_payload(issue_id(repo, number), reason[:8000], summary[:8000], messages),
            about=issue_channel(repo, number),
        )
        log.warning("escalated to a human", issue=f"{repo}#{number}", reason=reason, msg_id=envelope.msg_id)
        if self.forwarder is not None:  # our own messages do not come back from the mesh
            self.forwarder.accept(Escalation.from_envelope(envelope))
        return envelope.msg_id

    # --- this agent's discussions ------------------------------------------------------

    def discuss(
        self, issue: Issue, plan: str, *, window_s: float | None = None, stop: threading.Event | None = None
    ) -> Verdict:
        """Talk `plan` over on the issue's channel (`bzzz.hmmm.discussion`); blocks for the objection period."""
        own = _Own(self, issue)
        with self._lock:
            self._own[own.name] = own
        self.transport.join(own.name)
        self._announce()
        self._gather(own.name)
        limit = self.ttl_limit()
        ttl_s = min(self.settings.ttl_s, limit) if limit is not None else self.settings.ttl_s
        settings = DiscussionSettings(
            window_s=window_s or self.settings.window_s, ttl_s=ttl_s, max_revisions=self.settings.max_revisions
        )
        return Discussion(own, issue, plan, settings, self.thinker, clock=self.clock).run(stop)

    def finish(self, repo: str, number: int) -> None:
        """The task is over: stop announcing its discussion, and leave the channel."""
        name = issue_channel(repo, number)
        with self._lock:
            own = self._own.pop(name, None)
        if own is not None:
            self._announce()
            self.transport.leave(name)

    def transcript(self, repo: str, number: int) -> Transcript:
        return self.transcripts.transcript(issue_channel(repo, number))

    def ask_help(
        self,
        task_id: str,
        problem: str,
        tried: list[str],
        needs: list[str],
        *,
        window_s: float,
        stop: threading.Event | None = None,
    ) -> tuple[str, list[HelpAnswer]]:
        return self.help.ask(task_id, problem, tried, needs, window_s=window_s, about=about_task(task_id), stop=stop)

    def _announce(self) -> None:
        with self._lock:
            discussions = sorted(self._own)
        self.transport.announce(self.settings.follow, discussions)

    def _gather(self, channel: str) -> None:
        deadline = self.clock() + self.settings.gather_s
        while True:
            waiting = self.transport.followers() - self.transport.channel_peers(channel)
            if not waiting or self.clock() >= deadline:
                if waiting:
                    log.info("posting the plan without some followers", channel=channel, missing=sorted(waiting))
                return
            time.sleep(0.1)

    # --- what the mesh admitted --------------------------------------------------------

    def receive(self, envelope: Envelope, data: bytes) -> None:
        """One admitted envelope (capabilities, meta_msg, help, escalation)."""
        if envelope.type == "capabilities":
            self._follow(envelope)
            return
        if envelope.node_id == self.node_id and envelope.hop_count == 0:
            return  # our own, come back some other way
        about = envelope.topic if is_issue_channel(envelope.topic) else None
        if envelope.type in ("task_help_request", "task_help_response"):
            about = about_task(envelope.payload["task_id"])
        elif envelope.type == "escalation":
            about = about_task(envelope.payload["issue_id"])
        self.transcripts.record("hmmm_message", journal_fields(envelope, "received"), about)
        match envelope.type:
            case "meta_msg":
                self._meta(envelope)
            case "task_help_request":
                self.help.on_request(envelope, data, about)
            case "task_help_response":
                self.help.on_response(envelope)
            case "escalation":
                if self.forwarder is not None:
                    self.forwarder.accept(Escalation.from_envelope(envelope))

    def _meta(self, envelope: Envelope) -> None:
        message = Message.from_envelope(envelope)
        with self._lock:
            own = self._own.get(message.channel)
        if own is not None:
            own.inbox.put(message)
            return
        if message.query_type != "plan" or not self.settings.review or isinstance(self.thinker, NoThinker):
            return
        if self._reviewed.check_and_insert(message.msg_id):
            self._thinking.submit(self._review, message)

    def _review(self, plan: Message) -> None:
        params = plan.parameters
        repo, number = str(params.get("repo", "")), params.get("number")
        issue = Issue(repo, number if isinstance(number, int) else 0, str(params.get("title", "")), "")
        reply = self.thinker.review(issue, plan.text)
        if reply is None:
            return
        try:
            self.post(
                plan.channel,
                plan.issue_id,
                reply.query_type,
                reply.text or reply.query_type,
                parent_id=plan.msg_id,
                parameters={"revision": params.get("revision")},
            )
        except Exception as err:  # the discussion may have closed meanwhile (TTL): nothing more to say
            log.info("review not posted", channel=plan.channel, error=str(err)[:300])

    def _follow(self, envelope: Envelope) -> None:
        hmmm = envelope.payload.get("hmmm")
        if not self.settings.follow or not isinstance(hmmm, dict) or envelope.node_id == self.node_id:
            return
        channels = hmmm.get("discussions")
        if not isinstance(channels, list):
            return
        now = self.clock()
        joins = []
        with self._lock:
            for channel in channels:
                if not isinstance(channel, str) or not is_issue_channel(channel) or channel in self._own:
                    continue
                if channel not in self._followed:
                    if len(self._followed) >= MAX_FOLLOWED:
                        continue
                    joins.append(channel)
                self._followed[channel] = now
        for channel in joins:
            try:
                self.transport.join(channel)
                log.info("following a discussion", channel=channel, claimant=envelope.node_id)
            except Exception as err:
                with self._lock:
                    self._followed.pop(channel, None)
                log.warning("could not follow a discussion", channel=channel, error=str(err)[:300])

    def peer_joined(self) -> None:
        self.help.peer_joined()

    def tick(self, *, stale_after_s: float = 60.0) -> None:
        """Housekeeping: relays that are due, channels nobody announces any more."""
        self.help.tick()
        now = self.clock()
        with self._lock:
            stale = [c for c, seen in self._followed.items() if now - seen > stale_after_s]
            for channel in stale:
                del self._followed[channel]
        for channel in stale:
            try:
                self.transport.leave(channel)
            except Exception as err:
                log.info("could not leave a channel", channel=channel, error=str(err)[:300])

    def close(self) -> None:
        self._thinking.shutdown(wait=False, cancel_futures=True)


class _HelpSide:
    """The help desk's view of the hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def send(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int, about: str | None) -> Envelope:
        return self.hub.send(type, topic, payload, about=about, ttl=ttl)

    def relay(self, data: bytes, *, about: str | None) -> Envelope:
        envelope = self.hub.transport.forward(data)
        self.hub.transcripts.record("hmmm_message", journal_fields(envelope, "sent"), about)
        return envelope

    def note(self, kind: str, fields: dict[str, Any], *, about: str | None) -> None:
        self.hub.transcripts.record(kind, fields, about)


__all__ = ["Hub", "Transcript", "Transcripts", "Transport", "about_task"]
