"""Collaborative help: `task_help_request` from a stuck agent, `task_help_response` from peers able to help.

* **Asking** (`ask`): the request says what fails, what was tried, and what capabilities
  (models, tools) helping needs; answers are gathered for a window.
* **Answering**: an agent that has every capability the request needs (a model by any tag of
  it, as `bzzz.capabilities.names` says), and a model to think with, asks its model for advice
  and answers with it. Others do not answer.
* **Relaying**: gossip reaches every agent online when the request is sent. An agent that
  could not help keeps the request while it is valid and unanswered, and relays it when a new
  peer joins (it may be the one who can), re-signed as the relay with `hop_count + 1`
  (`bzzz._core.forward_envelope`). Past the hop limit (3) the core refuses to relay it, and
  the request is dropped there; receivers refuse a copy over the limit too. Dedup is by the
  origin's `msg_id`, so an agent that saw the request once never takes a relayed copy again.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from bzzz._core import Envelope, SeenCache
from bzzz.capabilities import satisfied
from bzzz.hmmm.messages import HELP_TOPIC, help_request_payload, help_response_payload, new_request_id
from bzzz.hmmm.thinking import Thinker

log = structlog.get_logger("bzzz.hmmm.help")


MAX_REQUEST_TTL_S = 3600  # the gate's largest message TTL: no copy of a request outlives it


class RelayRefused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class HelpTransport(Protocol):
    def send(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int, about: str | None) -> Envelope: ...
    def relay(self, data: bytes, *, about: str | None) -> Envelope: ...
    def note(self, kind: str, fields: dict[str, Any], *, about: str | None) -> None: ...


@dataclass(frozen=True)
class HelpAnswer:
    node_id: str
    text: str
    msg_id: str
    hop_count: int


@dataclass
class _Relayable:
    data: bytes
    request_id: str
    task_id: str
    expires_at_ms: int
    due: float | None = None  # monotonic time of the next relay, once a peer joined
    relays: int = 0


@dataclass
class _Ask:
    answers: queue.Queue[HelpAnswer] = field(default_factory=queue.Queue)


class HelpDesk:
    def __init__(
        self,
        node_id: str,
        transport: HelpTransport,
        thinker: Thinker,
        capabilities: Callable[[], frozenset[str]],
        *,
        relay: bool = True,
        relay_delay_s: float = 1.5,
        max_relays: int = 3,
        request_ttl_s: int = 120,
        clock: Callable[[], float] = time.monotonic,
        think: Callable[[Callable[[], None]], Any] | None = None,
    ) -> None:
        self.node_id = node_id
        self.transport = transport
        self.thinker = thinker
        self.capabilities = capabilities
        self.relay_enabled = relay
        self.relay_delay_s = relay_delay_s
        self.max_relays = max_relays
        self.request_ttl_s = request_ttl_s
        self.clock = clock
        self._think = think or (lambda job: threading.Thread(target=job, daemon=True).start())
        self._lock = threading.Lock()
        self._asks: dict[str, _Ask] = {}
        self._relayable: dict[str, _Relayable] = {}
        # Request ids this agent looked at, bounded and forgotten once no copy can be valid.
        self._handled = SeenCache(capacity=10_000, default_ttl=float(MAX_REQUEST_TTL_S))

    # --- asking -----------------------------------------------------------------------

    def ask(
        self,
        task_id: str,
        problem: str,
        tried: list[str],
        needs: list[str],
        *,
        window_s: float,
        about: str | None = None,
        stop: threading.Event | None = None,
    ) -> tuple[str, list[HelpAnswer]]:
        """Send a help request and gather the answers of peers able to help, for `window_s`
        (a second more after the first answer, then stop waiting)."""
        request_id = new_request_id()
        ask = _Ask()
        with self._lock:
            self._asks[request_id] = ask
        try:
            ttl = max(self.request_ttl_s, int(window_s) + 1)
            self.transport.send(
                "task_help_request",
                HELP_TOPIC,
                help_request_payload(request_id, task_id, problem[:8000], [t[:8000] for t in tried][:32], needs[:32]),
                ttl=ttl,
                about=about,
            )
            answers: list[HelpAnswer] = []
            end = self.clock() + window_s
            while self.clock() < end and not (stop and stop.is_set()):
                try:
                    answers.append(ask.answers.get(timeout=max(0.01, min(0.25, end - self.clock()))))
                except queue.Empty:
                    continue
                end = min(end, self.clock() + 1.0)
            return request_id, answers
        finally:
            with self._lock:
                self._asks.pop(request_id, None)

    # --- what peers send --------------------------------------------------------------

    def on_response(self, envelope: Envelope) -> None:
        payload = envelope.payload
        if not payload["can_help"]:
            return
        request_id = payload["request_id"]
        with self._lock:
            self._relayable.pop(request_id, None)  # answered: nothing left to relay
            ask = self._asks.get(request_id)
        if ask is not None:
            ask.answers.put(HelpAnswer(envelope.node_id, payload["text"], envelope.msg_id, envelope.hop_count))

    def on_request(self, envelope: Envelope, data: bytes, about: str | None) -> None:
        payload = envelope.payload
        request_id = payload["request_id"]
        if envelope.node_id == self.node_id:
            return
        if not self._handled.check_and_insert(request_id):
            return
        needs = [str(n) for n in payload["needs"]]
        mine = self.capabilities()
        missing = [n for n in needs if not satisfied(n, mine)]
        if not missing:
            self._think(lambda: self._answer(envelope, about))
            return
        log.info("cannot help", request=request_id, missing=missing, hop_count=envelope.hop_count)
        if self.relay_enabled:
            with self._lock:
                self._relayable[request_id] = _Relayable(data, request_id, payload["task_id"], envelope.expires_at_ms)

    def _answer(self, envelope: Envelope, about: str | None) -> None:
        payload = envelope.payload
        advice = self.thinker.advise(payload["problem"], list(payload["tried"]))
        if advice is None:
            log.info("no advice to give", request=payload["request_id"])
            if self.relay_enabled:
                with self._lock:
                    self._relayable[payload["request_id"]] = _Relayable(
                        envelope.to_bytes(), payload["request_id"], payload["task_id"], envelope.expires_at_ms
                    )
            return
        self.transport.send(
            "task_help_response",
            HELP_TOPIC,
            help_response_payload(payload["request_id"], payload["task_id"], True, advice[:8000]),
            ttl=self.request_ttl_s,
            about=about,
        )

    # --- relaying ---------------------------------------------------------------------

    def peer_joined(self) -> None:
        """A new peer may be the one who can help: relay what is open, once the peer is in the mesh."""
        due = self.clock() + self.relay_delay_s
        with self._lock:
            for item in self._relayable.values():
                if item.due is None:
                    item.due = due

    def tick(self, now_ms: int | None = None) -> None:
        now = self.clock()
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        with self._lock:
            for request_id in [r for r, item in self._relayable.items() if item.expires_at_ms <= now_ms]:
                del self._relayable[request_id]
            due = [item for item in self._relayable.values() if item.due is not None and item.due <= now]
        for item in due:
            self._relay(item)

    def _relay(self, item: _Relayable) -> None:
        about = item.task_id
        item.due = None
        item.relays += 1
        if item.relays >= self.max_relays:
            with self._lock:
                self._relayable.pop(item.request_id, None)
        try:
            relayed = self.transport.relay(item.data, about=about)
        except RelayRefused as refused:
            with self._lock:
                self._relayable.pop(item.request_id, None)
            log.info("help request dropped", request=item.request_id, reason=refused.reason, detail=str(refused))
            self.transport.note(
                "help_dropped",
                {"request_id": item.request_id, "reason": refused.reason, "detail": str(refused)[:500]},
                about=about,
            )
            return
        log.info("help request relayed", request=item.request_id, hop_count=relayed.hop_count)
