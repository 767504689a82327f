"""The hmmm worker's side of the `hmmm` bus service: this agent's hub (`bzzz.hmmm.engine`), fed
by what the mesh admits and asked by the executor.

    HmmmClient ──Request(HmmmRequest)──> svc-hmmm.sock ──> HmmmService.handle ──thread──> dispatch(hub, request)
    mesh worker ──events `gossip/bzzz/meta/...`, `mesh/peers`──> listen ──> Hub.receive, Hub.peer_joined

The wire (the service name and the request structs) is `bzzz.hmmm.client`'s. A request runs in
a thread of its own (a discussion lasts its objection period) while the main loop goes on
heartbeating and doing the chores: relays that are due, webhook deliveries, journal entries that
wait in the outbox, and a model that did not answer at start. Every HMMM message sent or received
is journalled through the worker's `bzzz.log.journal.Journal`.
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import msgspec
import structlog

from bzzz._core import EnvelopeRejected, verify_envelope
from bzzz.bus import BusError, Request, Service, Subscriber
from bzzz.hmmm.client import SERVICE, AskHelp, Discuss, Escalate, Finish, GetTranscript, HmmmRequest, request_decoder
from bzzz.hmmm.engine import Hub, Transcripts
from bzzz.hmmm.escalation import WebhookForwarder
from bzzz.hmmm.messages import HELP_TOPIC, issue_channel, issue_id
from bzzz.hmmm.settings import HmmmWorkerSettings
from bzzz.hmmm.thinking import Issue, NoThinker, Thinker, pick_thinker
from bzzz.hmmm.transport import MeshTransport
from bzzz.log.journal import Journal
from bzzz.mesh.client import GOSSIP_PREFIX, PEERS_TOPIC, PeerEvent
from bzzz.runtime import WorkerRuntime
from bzzz.state import WorkerState

log = structlog.get_logger("bzzz.hmmm.service")

T = TypeVar("T")
# "bzzz/meta/" covers every issue channel and the escalation topic.
GOSSIP_TOPICS = (GOSSIP_PREFIX + "bzzz/meta/", GOSSIP_PREFIX + HELP_TOPIC, GOSSIP_PREFIX + "bzzz/capabilities")
THINKER_RETRY_S = 30.0
CAPABILITIES_FRESH_S = 10.0


def task_of(request: HmmmRequest) -> str:
    """The issue a request is about, as `owner/repo#n` (bound as `task` in the log lines)."""
    if isinstance(request, AskHelp):
        return request.task_id
    return issue_id(request.repo, request.number)


def dispatch(hub: Hub, request: HmmmRequest, stop: threading.Event) -> dict[str, Any]:
    """One request, answered by the hub; the reply, as JSON-able data."""
    with structlog.contextvars.bound_contextvars(task=task_of(request)):
        match request:
            case Discuss(repo=repo, number=number, title=title, body=body, plan=plan, window_s=window_s):
                verdict = hub.discuss(Issue(repo, number, title, body), plan, window_s=window_s, stop=stop)
                return verdict.as_dict()
            case AskHelp(task_id=task_id, problem=problem, tried=tried, needs=needs, window_s=window_s):
                request_id, answers = hub.ask_help(task_id, problem, tried, needs, window_s=window_s, stop=stop)
                return {
                    "request_id": request_id,
                    "answers": [
                        {"node_id": a.node_id, "text": a.text, "msg_id": a.msg_id, "hop_count": a.hop_count}
                        for a in answers
                    ],
                }
            case Escalate(repo=repo, number=number, reason=reason, summary=summary, messages=messages):
                return {"msg_id": hub.escalate(repo, number, reason, summary, messages)}
            case GetTranscript(repo=repo, number=number):
                transcript = hub.transcript(repo, number)
                return {
                    "channel": issue_channel(repo, number),
                    "first": transcript.first,
                    "last": transcript.last,
                    "entries": transcript.entries,
                }
            case Finish(repo=repo, number=number):
                hub.finish(repo, number)
    return {}


def while_heartbeating(
    rt: WorkerRuntime, pool: ThreadPoolExecutor, job: Callable[[], T], chores: Callable[[], None]
) -> T:
    """`job` in the pool, while this (the main) thread goes on heartbeating and doing `chores`."""
    future: Future[T] = pool.submit(job)
    while True:
        rt.heartbeat()
        chores()
        try:
            return future.result(timeout=rt.interval / 2)
        except TimeoutError:
            continue


def listen(rt: WorkerRuntime, hub: Hub, ready: threading.Event) -> None:
    """The inbound side: admitted gossip and peer changes from the mesh worker, until stopping."""
    with Subscriber(rt.run_dir, [*GOSSIP_TOPICS, PEERS_TOPIC]) as subscriber:
        ready.set()
        while not rt.stopping.is_set():
            got = subscriber.recv(0.2)
            if got is None:
                continue
            topic, message = got
            try:
                if topic == PEERS_TOPIC:
                    if msgspec.json.decode(message.body, type=PeerEvent).kind == "joined":
                        hub.peer_joined()
                    continue
                hub.receive(verify_envelope(message.body), message.body)
            except EnvelopeRejected as err:
                log.info("gossip expired on the way from the mesh worker", reason=err.reason)
            except Exception:
                log.exception("could not handle a message", topic=topic)


class HmmmService:
    """This agent's hub over the mesh worker, serving `hmmm` until the worker is asked to stop."""

    def __init__(self, rt: WorkerRuntime, settings: HmmmWorkerSettings, state: WorkerState, journal: Journal) -> None:
        self.rt, self.settings, self.journal = rt, settings, journal
        node_id = rt.node_id or rt.name
        self.transport = MeshTransport(rt.run_dir, timeout_s=5.0)
        self.forwarder = WebhookForwarder(
            state, node_id=node_id, n8n_url=settings.n8n_webhook, slack_url=settings.slack_url()
        )
        self._capabilities: frozenset[str] = frozenset()
        self._capabilities_at = float("-inf")
        self.hub = Hub(
            node_id,
            self.transport,
            Transcripts(journal),
            self.think(),
            settings,
            capabilities=self.capabilities,
            forwarder=self.forwarder,
            ttl_limit=self.transport.discussion_ttl,
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hmmm-request")
        self._stop_request = threading.Event()
        self._next_think = time.monotonic() + THINKER_RETRY_S
        self._last_chores = 0.0

    def capabilities(self) -> frozenset[str]:
        """This agent's models and tools (what a help request may need), asked of the mesh now and then."""
        if time.monotonic() - self._capabilities_at > CAPABILITIES_FRESH_S:
            try:
                self._capabilities, self._capabilities_at = self.transport.own_capabilities(), time.monotonic()
            except BusError as err:
                log.info("could not read this agent's capabilities", error=str(err)[:200])
        return self._capabilities

    def think(self) -> Thinker:
        if not self.settings.ollama_endpoints:
            return NoThinker()
        return pick_thinker(
            self.settings.ollama_endpoints, self.settings.model, timeout_s=self.settings.model_timeout_s
        )

    def chores(self) -> None:
        now = time.monotonic()
        if now - self._last_chores < 0.5:
            return
        self._last_chores = now
        self.hub.tick()
        if self.forwarder.configured:
            self.forwarder.deliver()
        self.journal.deliver()
        if self.settings.ollama_endpoints and isinstance(self.hub.thinker, NoThinker) and now >= self._next_think:
            self._next_think = now + THINKER_RETRY_S
            self.hub.thinker = self.hub.help.thinker = self.think()

    def handle(self, request: Request) -> bytes:
        """The bus handler: the request runs in the pool (with this request's log context)."""
        try:
            decoded = request_decoder.decode(request.body)
        except msgspec.ValidationError as err:
            raise ValueError(f"not an hmmm request: {err}") from None
        job = functools.partial(contextvars.copy_context().run, dispatch, self.hub, decoded, self._stop_request)
        return msgspec.json.encode(while_heartbeating(self.rt, self._pool, job, self.chores))

    def serve(self) -> None:
        try:
            self.transport.announce(self.settings.follow, [])
        except BusError as err:
            log.info("mesh not up yet; will announce with the first discussion", error=str(err)[:200])
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(self.rt, self.hub, ready), daemon=True, name="hmmm-listen")
        listener.start()
        ready.wait(5.0)
        log.info(
            "discussing",
            window_s=self.settings.window_s,
            follow=self.settings.follow,
            model=getattr(self.hub.thinker, "model", None),
            webhooks=sorted(self.forwarder.urls),
            pid=os.getpid(),
        )
        try:
            with Service(self.rt.run_dir, SERVICE, self.handle) as service:
                self.rt.heartbeat()  # ready
                while not self.rt.stopping.is_set():
                    service.serve_one(self.rt.interval / 2)
                    self.rt.heartbeat()
                    self.chores()
        finally:
            self._stop_request.set()
            self.hub.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            listener.join(2.0)
            self.forwarder.close()
            self.transport.close()


__all__ = ["HmmmService", "dispatch", "listen", "task_of", "while_heartbeating"]
