"""Requests that must not be lost: a worker's service, answered with an acknowledgement.

    Client (DEALER) ──[b"", Request]──> svc-NAME.sock (ROUTER)  Service  handler(request) -> bytes
                   <──[b"", Reply]────                          replies.seen / remember

The client does what the ZeroMQ guide calls the Lazy Pirate pattern (ch. 4): wait
`timeout_s` for the reply, and if none comes, throw the socket away (with whatever is
still queued in it) and send the *same* request, with the same `request_id`, on a
new one, up to `retries` times; then raise `RequestTimeout`. The service may well
have been killed and restarted in between: the new one binds the same socket file and
the retry reaches it.

At-least-once delivery means a service can see a request twice: the reply to the first
copy was lost, or the client resent while the service was busy. A service therefore
looks every request up in its `ReplyCache` first (`seen(request_id)`) and answers a
known one from there without calling the handler again; after the handler it stores
the reply (`remember`). The default cache lives in memory and forgets on restart. For
*exactly-once effects across a crash* the handler's effect and the stored reply must
commit together, or a kill between the two does the work twice; with the agent's
SQLite inbox (`accept(msg_id, payload) -> bool`, `result_of(msg_id)`,
`finish(msg_id, result)`) that is (`bzzz.log.service` does this for an effect outside
SQLite, the log, by recording its intent first)::

    class InboxReplies:                      # a ReplyCache over the durable inbox
        def __init__(self, inbox): self.inbox = inbox
        def seen(self, request_id): return self.inbox.result_of(request_id)
        def remember(self, request_id, reply): pass    # the handler already finished it

    def handle(request):                     # the effect and finish() in one transaction
        inbox.accept(request.request_id, request.body)
        result = do_the_work(request.body)
        inbox.finish(request.request_id, result)
        return result

A handler that raises is answered with an error (`ServiceError` at the client) and not
remembered, so a retry runs it again. Frames that are not a request get an error reply
too; nothing a client sends stops the service.

The wire format is REQ-compatible (an empty delimiter frame before the payload), so a
plain REQ socket can talk to a service as well.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, Self

import msgspec
import structlog
import zmq

from bzzz.bus._sockets import Bound, bind_private, endpoint, is_live, release, service_file, socket_path
from bzzz.bus.errors import BusError, RequestTimeout, ServiceError
from bzzz.bus.messages import Reply, Request, encoder, reply_decoder, request_decoder

log = structlog.get_logger("bzzz.bus")

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # a peer sending more is disconnected by ZeroMQ

Handler = Callable[[Request], bytes]


class ReplyCache(Protocol):
    """Where a service keeps the replies it gave, to answer a repeated request again."""

    def seen(self, request_id: str) -> bytes | None:
        """The reply already given to `request_id`, or None if it was never finished."""
        ...

    def remember(self, request_id: str, reply: bytes) -> None:
        """Record the reply to a request the handler has just finished."""
        ...


class MemoryReplyCache:
    """The default `ReplyCache`: the last `max_entries` replies, in memory (lost on restart)."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._replies: OrderedDict[str, bytes] = OrderedDict()

    def seen(self, request_id: str) -> bytes | None:
        return self._replies.get(request_id)

    def remember(self, request_id: str, reply: bytes) -> None:
        self._replies[request_id] = reply
        self._replies.move_to_end(request_id)
        while len(self._replies) > self.max_entries:
            self._replies.popitem(last=False)

    def __len__(self) -> int:
        return len(self._replies)


class Service:
    """Answers the requests to service `name` of one agent, one at a time, with `handler`.

    Binds `svc-NAME.sock` (0600) in the run dir; a stale file of a crashed predecessor
    is replaced, a live one (the same service running twice) is a `BusError`. Drive it
    from the worker's own loop with `serve_one(timeout_s)` (it can heartbeat between
    calls), or poll `socket` together with other sockets.

    An exception from `replies` (the durable store failing) is not answered but raised
    out of `serve_one`: the worker dies, the supervisor restarts it, and the client's
    retry finds the restarted service.
    """

    def __init__(
        self,
        run_dir: Path | str,
        name: str,
        handler: Handler,
        *,
        replies: ReplyCache | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.replies: ReplyCache = replies if replies is not None else MemoryReplyCache()
        self.handled = 0  # handler calls that returned a reply
        self.duplicates = 0  # requests answered from the reply cache
        self.failed = 0  # handler calls that raised
        self.malformed = 0  # messages that were not a request
        sock = (context or zmq.Context.instance()).socket(zmq.ROUTER)
        sock.setsockopt(zmq.MAXMSGSIZE, max_request_bytes)
        sock.setsockopt(zmq.LINGER, 500)  # replies already queued get half a second on close
        try:
            self._bound: Bound | None = bind_private(sock, run_dir, service_file(name))
        except BaseException:
            sock.close(linger=0)
            raise
        self.path = self._bound.path
        self.socket = sock

    def serve_one(self, timeout_s: float | None = None) -> bool:
        """Answer one request if one arrives within `timeout_s` (None: wait); True if one did."""
        if not self.socket.poll(-1 if timeout_s is None else max(0, int(timeout_s * 1000))):
            return False
        frames = self.socket.recv_multipart()
        # [identity, b"", payload] from a DEALER or REQ; answer with the same envelope.
        envelope = frames[:2] if len(frames) > 1 and frames[1] == b"" else frames[:1]
        reply = self._answer(frames[len(envelope) :])
        try:
            self.socket.send_multipart([*envelope, encoder.encode(reply)], zmq.NOBLOCK)
        except zmq.Again:
            pass  # the client's queue is full or it is gone; it will ask again
        return True

    def serve_forever(self, stop: threading.Event, poll_s: float = 0.1) -> None:
        """Answer requests until `stop` is set (checked every `poll_s`)."""
        while not stop.is_set():
            self.serve_one(poll_s)

    def _answer(self, body: list[bytes]) -> Reply:
        if len(body) != 1:
            self.malformed += 1
            return Reply("", False, error=f"malformed request: expected one payload frame, got {len(body)}")
        try:
            request = request_decoder.decode(body[0])
        except msgspec.DecodeError as error:
            self.malformed += 1
            return Reply("", False, error=f"malformed request: {error}")
        if request.service != self.name:
            self.malformed += 1
            return Reply(
                request.request_id, False, error=f"request for service {request.service!r} reached {self.name!r}"
            )
        cached = self.replies.seen(request.request_id)
        if cached is not None:
            self.duplicates += 1
            return Reply(request.request_id, True, cached)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request.request_id, sender=request.sender):
                result = self.handler(request)
            if not isinstance(result, bytes):
                raise TypeError(f"the handler of {self.name!r} returned {type(result).__name__}, not bytes")
        except Exception as error:
            self.failed += 1
            log.warning("request failed", service=self.name, request_id=request.request_id, error=repr(error))
            return Reply(request.request_id, False, error=f"{type(error).__name__}: {error}")
        self.replies.remember(request.request_id, result)
        self.handled += 1
        return Reply(request.request_id, True, result)

    def close(self) -> None:
        """Stop listening and remove the socket file."""
        if self._bound is not None:
            self.socket.close()
            release(self._bound)
            self._bound = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def service_available(run_dir: Path | str, name: str) -> bool:
    """Whether service `name` of the agent in `run_dir` is listening right now."""
    try:
        return is_live(socket_path(run_dir, service_file(name)))
    except BusError:
        return False


class Client:
    """Sends requests to the services of one agent and waits for their replies.

    Thread-safe (requests from several threads go one at a time); one socket per service,
    connected on first use.
    """

    def __init__(
        self,
        run_dir: Path | str,
        *,
        sender: str = "",
        timeout_s: float = 2.0,
        retries: int = 3,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.sender = sender
        self.timeout_s = timeout_s
        self.retries = retries
        self.resent = 0  # requests sent again after a timeout
        self._context = context or zmq.Context.instance()
        self._sockets: dict[str, zmq.Socket[bytes]] = {}
        self._lock = threading.Lock()

    def _socket(self, service: str) -> zmq.Socket[bytes]:
        sock = self._sockets.get(service)
        if sock is None:
            path = socket_path(self.run_dir, service_file(service))
            sock = self._context.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint(path))
            self._sockets[service] = sock
        return sock

    def _discard(self, service: str) -> None:
        sock = self._sockets.pop(service, None)
        if sock is not None:
            sock.close(linger=0)

    def request(
        self,
        service: str,
        body: bytes,
        *,
        request_id: str | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
    ) -> bytes:
        """Send `body` to `service` and return its reply.

        Waits `timeout_s` for each attempt and makes `retries` more after the first, all
        with the same `request_id` (default: a fresh random one; give your own, e.g. an
        outbox row's id, to keep it across a restart of the caller). Raises
        `RequestTimeout` when no attempt was answered and `ServiceError` when the service
        answered with an error.
        """
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        retries = self.retries if retries is None else retries
        request_id = request_id or os.urandom(16).hex()
        payload = encoder.encode(Request(request_id, service, body, self.sender))
        started = time.monotonic()
        with self._lock:
            for attempt in range(1, retries + 2):
                if attempt > 1:
                    self.resent += 1
                    log.info("request resent", service=service, request_id=request_id, attempt=attempt)
                reply = self._attempt(service, payload, request_id, timeout_s)
                if reply is not None:
                    if not reply.ok:
                        raise ServiceError(service, request_id, reply.error)
                    return reply.body
                # Lazy Pirate: a new socket, so nothing of this attempt is delivered late.
                self._discard(service)
            path = socket_path(self.run_dir, service_file(service))
            raise RequestTimeout(service, request_id, retries + 1, time.monotonic() - started, str(path))

    def _attempt(self, service: str, payload: bytes, request_id: str, timeout_s: float) -> Reply | None:
        sock = self._socket(service)
        deadline = time.monotonic() + timeout_s
        try:
            sock.send_multipart([b"", payload], zmq.NOBLOCK)
        except zmq.Again:
            return None  # queue full: the service has been away a while
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(max(1, int(left * 1000))):
                break
            frames = sock.recv_multipart()
            if len(frames) != 2 or frames[0] != b"":
                continue  # not from a service
            try:
                reply = reply_decoder.decode(frames[1])
            except msgspec.DecodeError:
                continue
            if reply.request_id == request_id or (not reply.ok and reply.request_id == ""):
                return reply
            # else: a late reply to an earlier request; that caller has moved on
        return None

    def close(self) -> None:
        with self._lock:
            for service in list(self._sockets):
                self._discard(service)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
