"""Events between the workers of one agent: publish/subscribe through a proxy.

    publisher (XPUB) ──> bus.in  [XSUB  BusProxy  XPUB]  bus.out ──> subscriber (SUB)
    publisher (XPUB) ──┘          a thread of the supervisor         └──> subscriber (SUB)

Every worker connects to the two fixed sockets of the proxy, so nobody needs to know
who else is there, and workers may come and go (and the proxy restart) in any order:
ZeroMQ reconnects and re-sends subscriptions by itself.

**Events are best effort.** They are for news (status, capabilities, "task claimed"),
not for work that must be done; anything that must not be lost goes through a
`Service` (`bzzz.bus.requests`), which is acknowledged and retried. Events are lost when

- *nobody listens yet* (the slow-joiner problem, ZeroMQ guide ch. 5): a subscription
  takes a moment to travel subscriber -> proxy -> publisher, and until it arrives the
  publisher drops the topic's messages as unwanted. A subscriber that connects late
  never sees what was published before. `Publisher.wait_for_subscriber(topic)` waits
  until someone listens, for the few cases where the first messages matter.
- *a publisher outruns the proxy*: each publisher queues at most `hwm` messages
  (ZMQ_SNDHWM). Publishers use ZMQ_XPUB_NODROP, so a full queue is reported rather than
  silent: `publish()` returns False and counts it in `Publisher.dropped` (or waits up to
  `timeout_s` for room, if asked to).
- *a subscriber falls behind*: the proxy queues at most `hwm` messages for each
  subscriber (its XPUB SNDHWM; the subscriber's own RCVHWM adds as many again, and the
  kernel's socket buffers a few more), then drops that subscriber's newest messages.
  The proxy deliberately does not wait: one hung worker must not stall everyone's
  events (it is killed by the supervisor's heartbeat check soon enough). ZeroMQ does
  not report these drops, so every message carries a sequence number per publisher
  and topic, and the subscriber counts the gaps in `Subscriber.missed`.
- *the proxy restarts*: whatever was queued inside it is gone (also counted as gaps).

The default `hwm` of 10,000 messages holds a few seconds of a busy bus and costs at
most ~7 MB per queue with 700-byte envelopes, and nothing when the bus is idle.

Topics are plain strings without NUL; a subscription matches every topic that starts
with it (ZeroMQ prefix matching), or exactly one topic with `exact=True`. Sockets are
not thread-safe: one Publisher or Subscriber per thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import MethodType
from typing import NamedTuple, Self

import msgspec
import structlog
import zmq

from bzzz.bus._sockets import BUS_IN, BUS_OUT, Bound, bind_private, endpoint, release, socket_path
from bzzz.bus.errors import BusError
from bzzz.bus.messages import TOPIC_END, BusMessage, bus_message_decoder, encoder

log = structlog.get_logger("bzzz.bus")

_encode = encoder.encode
_decode_message = bus_message_decoder.decode

DEFAULT_HWM = 10_000
MAX_EVENT_BYTES = 4 * 1024 * 1024  # a peer sending more is disconnected by ZeroMQ
# Sequence numbers are tracked per (publisher, topic); past this many, the least
# recently used are forgotten (a forgotten topic's next message counts no gap).
MAX_TRACKED_TOPICS = 65_536


def _check_topic(topic: str) -> bytes:
    if not isinstance(topic, str) or "\x00" in topic:
        raise BusError(f"topic {topic!r} must be a str without NUL characters")
    return topic.encode()


class ProxyStats(NamedTuple):
    """What went through a proxy since it started (from ZeroMQ's own counters)."""

    events: int  # messages received from publishers and passed on
    bytes: int
    subscription_messages: int  # (un)subscriptions passed from subscribers to publishers


class BusProxy:
    """The agent's event hub: binds `bus.in` and `bus.out` and forwards between them.

    Runs ZeroMQ's own proxy (C, no GIL held) in a thread of the calling process; the
    supervisor starts it before any worker and stops it last. Stale socket files of a
    crashed predecessor are removed on `start()`; a live one (another agent on the
    same run dir) is a `BusError`.
    """

    def __init__(
        self,
        run_dir: Path | str,
        *,
        hwm: int = DEFAULT_HWM,
        max_message_bytes: int = MAX_EVENT_BYTES,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.in_path = socket_path(self.run_dir, BUS_IN)
        self.out_path = socket_path(self.run_dir, BUS_OUT)
        self.hwm = hwm
        self.max_message_bytes = max_message_bytes
        self._context = context or zmq.Context.instance()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sockets: list[zmq.Socket[bytes]] = []
        self._bound: list[Bound] = []
        self._steer: zmq.Socket[bytes] | None = None
        self.failure: BaseException | None = None  # why the proxy thread ended, if not by stop()

    def start(self) -> Self:
        with self._lock:
            if self._thread is not None:
                raise BusError(f"the bus proxy in {self.run_dir} is already running")
            ctx = self._context
            frontend, backend = ctx.socket(zmq.XSUB), ctx.socket(zmq.XPUB)
            control, steer = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
            sockets = [frontend, backend, control, steer]
            bound: list[Bound] = []
            try:
                for sock in sockets:
                    sock.setsockopt(zmq.LINGER, 0)
                # Options before bind: a listener copies them when it is bound, and the
                # pipes of the connections it accepts get their HWMs from that copy.
                frontend.setsockopt(zmq.RCVHWM, self.hwm)
                frontend.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes)
                backend.setsockopt(zmq.SNDHWM, self.hwm)
                # No XPUB_NODROP here: a slow subscriber loses messages, the others never wait.
                bound.append(bind_private(frontend, self.run_dir, BUS_IN))
                bound.append(bind_private(backend, self.run_dir, BUS_OUT))
                name = f"inproc://bzzz-bus-proxy-{os.getpid()}-{id(self):x}"
                control.bind(name)
                steer.connect(name)
            except BaseException:
                for sock in sockets:
                    sock.close(linger=0)
                for b in bound:
                    release(b)
                raise
            self._sockets, self._bound, self._steer = sockets, bound, steer
            self.failure = None
            self._thread = threading.Thread(
                target=self._run, args=(frontend, backend, control), name="bzzz-bus-proxy", daemon=True
            )
            self._thread.start()
            log.info("bus proxy started", run_dir=str(self.run_dir), hwm=self.hwm)
            return self

    def _run(self, frontend: zmq.Socket[bytes], backend: zmq.Socket[bytes], control: zmq.Socket[bytes]) -> None:
        try:
            zmq.proxy_steerable(frontend, backend, None, control)
        except zmq.ContextTerminated as error:
            self.failure = error
        except BaseException as error:  # noqa: BLE001 - recorded and logged; the owner decides
            self.failure = error
            log.error("bus proxy failed", run_dir=str(self.run_dir), error=repr(error))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self, timeout_s: float = 1.0) -> ProxyStats:
        """ZeroMQ's counters of this proxy (messages and bytes each way)."""
        with self._lock:
            if self._steer is None or not self.running:
                raise BusError(f"the bus proxy in {self.run_dir} is not running")
            self._steer.send(b"STATISTICS")
            if not self._steer.poll(int(timeout_s * 1000)):
                raise BusError(f"the bus proxy in {self.run_dir} did not answer within {timeout_s} s")
            n = [int.from_bytes(frame, sys.byteorder) for frame in self._steer.recv_multipart()]
        # frontend: msgs in, bytes in, msgs out, bytes out; then the same for the backend
        return ProxyStats(events=n[0], bytes=n[1], subscription_messages=n[4])

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop forwarding, close the sockets and remove their files. Idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            assert self._steer is not None
            if thread.is_alive():
                self._steer.send(b"TERMINATE")
                thread.join(timeout_s)
            if thread.is_alive():  # pragma: no cover - ZeroMQ's proxy answers TERMINATE at once
                raise BusError(f"the bus proxy in {self.run_dir} did not stop within {timeout_s} s")
            for sock in self._sockets:
                sock.close(linger=0)
            for bound in self._bound:
                release(bound)
            self._sockets, self._bound, self._steer = [], [], None
            log.info("bus proxy stopped", run_dir=str(self.run_dir))

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Publisher:
    """Publishes events from one worker (`sender`) to the agent's bus.

    An XPUB socket rather than a plain PUB, for two things PUB cannot do: report a
    full queue (ZMQ_XPUB_NODROP, see the module docs) and see which topics have
    subscribers (`wait_for_subscriber`).
    """

    def __init__(
        self,
        run_dir: Path | str,
        sender: str,
        *,
        hwm: int = DEFAULT_HWM,
        linger_s: float = 1.0,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.path = socket_path(run_dir, BUS_IN)
        self.sender = sender
        self.origin = os.urandom(8).hex()
        self.published = 0  # handed to ZeroMQ
        self.dropped = 0  # refused: the queue to the proxy was full
        self._count = 0
        self._seq: dict[str, int] = {}
        self._sndtimeo = -1
        self._subscriptions: Counter[bytes] = Counter()
        sock = (context or zmq.Context.instance()).socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.XPUB_NODROP, 1)
        # What is queued when the worker closes gets `linger_s` to reach the proxy.
        sock.setsockopt(zmq.LINGER, int(linger_s * 1000))
        sock.connect(endpoint(self.path))
        self.socket = sock
        # pyzmq's Socket.send only adds routing_id/group (draft sockets) to the backend's
        # send; calling the backend's directly saves ~0.4 µs a message, ~15% of a publish.
        self._send = MethodType(zmq.backend.Socket.send, sock)
        self._id_prefix = self.origin + "-"

    def publish(self, topic: str, body: bytes, *, msg_id: str | None = None, timeout_s: float = 0.0) -> bool:
        """Queue one event; False (and `dropped` + 1) if the queue stayed full for `timeout_s`.

        Never blocks by default: a worker's main loop must not stall because the bus is
        busy. True means ZeroMQ took the message (or nobody subscribes to `topic`, and
        it was discarded at once), not that anyone received it.
        """
        # The hot path of the bus: kept to the bare steps (benches/bench_bus.py).
        seqs = self._seq
        seq = seqs.pop(topic, 0) + 1
        seqs[topic] = seq
        if seq == 1:  # a topic new to this publisher (or long unused): check it once
            try:
                _check_topic(topic)
            except BusError:
                del seqs[topic]
                raise
            if len(seqs) > MAX_TRACKED_TOPICS:
                del seqs[next(iter(seqs))]
        if type(body) is not bytes and not isinstance(body, bytearray | memoryview):
            seqs[topic] = seq - 1
            raise TypeError(f"an event body is bytes, not {type(body).__name__}")
        self._count += 1
        frame = (
            topic.encode()
            + TOPIC_END
            + _encode(
                BusMessage(
                    topic,
                    self.sender,
                    msg_id or f"{self._id_prefix}{self._count}",
                    time.time_ns() // 1_000_000,
                    body,
                    self.origin,
                    seq,
                )
            )
        )
        try:
            if timeout_s <= 0:
                self._send(frame, zmq.NOBLOCK)
            else:
                timeout_ms = max(1, int(timeout_s * 1000))
                if timeout_ms != self._sndtimeo:
                    self.socket.setsockopt(zmq.SNDTIMEO, timeout_ms)
                    self._sndtimeo = timeout_ms
                self._send(frame)
        except zmq.Again:
            seqs[topic] = seq - 1  # counted here, so not a gap for the subscribers
            self.dropped += 1
            return False
        self.published += 1
        if not self.published & 1023:
            self._read_subscriptions(0)
        return True

    def _read_subscriptions(self, timeout_ms: int) -> None:
        """Apply the (un)subscriptions the proxy has passed on; wait up to `timeout_ms` for one."""
        while self.socket.poll(timeout_ms, zmq.POLLIN):
            frame = self.socket.recv(zmq.NOBLOCK)
            if frame[:1] == b"\x01":
                self._subscriptions[frame[1:]] += 1
            elif frame[:1] == b"\x00" and self._subscriptions[frame[1:]] > 0:
                self._subscriptions[frame[1:]] -= 1
                if not self._subscriptions[frame[1:]]:
                    del self._subscriptions[frame[1:]]
            timeout_ms = 0

    def has_subscriber(self, topic: str) -> bool:
        """Whether, as far as this publisher has heard, anyone subscribes to `topic`."""
        self._read_subscriptions(0)
        key = _check_topic(topic) + TOPIC_END
        return any(key.startswith(prefix) for prefix in self._subscriptions)

    def wait_for_subscriber(self, topic: str, timeout_s: float) -> bool:
        """Wait until someone subscribes to `topic` (see "slow joiner" above); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not self.has_subscriber(topic):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read_subscriptions(max(1, min(int(left * 1000), 50)))
        return True

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Subscriber:
    """Receives the events of some topics from the agent's bus."""

    def __init__(
        self,
        run_dir: Path | str,
        topics: Iterable[str] | str = ("",),
        *,
        exact: bool = False,
        hwm: int = DEFAULT_HWM,
        max_message_bytes: int = MAX_EVENT_BYTES,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        self.path = socket_path(run_dir, BUS_OUT)
        self.received = 0
        self.missed = 0  # gaps in the publishers' sequence numbers: dropped on the way
        self.malformed = 0  # frames that were not a BusMessage (skipped)
        self._last_seq: dict[tuple[str, str], int] = {}
        self._rcvtimeo = -1
        sock = (context or zmq.Context.instance()).socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
        sock.setsockopt(zmq.LINGER, 0)
        self.socket = sock
        for topic in [topics] if isinstance(topics, str) else topics:
            self.subscribe(topic, exact=exact)
        sock.connect(endpoint(self.path))
        self._recv = sock.recv

    def subscribe(self, topic: str, *, exact: bool = False) -> None:
        """Also receive `topic`: every topic that starts with it, or only itself if `exact`."""
        self.socket.setsockopt(zmq.SUBSCRIBE, _check_topic(topic) + (TOPIC_END if exact else b""))

    def unsubscribe(self, topic: str, *, exact: bool = False) -> None:
        self.socket.setsockopt(zmq.UNSUBSCRIBE, _check_topic(topic) + (TOPIC_END if exact else b""))

    def recv(self, timeout_s: float | None = None) -> tuple[str, BusMessage] | None:
        """The next event as (topic, message); None if none came within `timeout_s` (None: wait)."""
        # The hot path of the bus: kept to the bare steps (benches/bench_bus.py).
        timeout_ms = -1 if timeout_s is None else int(timeout_s * 1000) if timeout_s > 0 else 0
        deadline = 0.0  # set on the first malformed frame only: the clock costs on every call
        while True:
            if timeout_ms != self._rcvtimeo:
                self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
                self._rcvtimeo = timeout_ms
            try:
                frame = self._recv()
            except zmq.Again:
                return None
            try:
                end = frame.index(0)
                # A bytes slice copies the body once more, and still costs less than a
                # memoryview's set-up (measured: 0.66 against 0.91 us with 700-byte envelopes).
                message = _decode_message(frame[end + 1 :])
                topic = message.topic
                if frame[:end] != topic.encode():
                    raise ValueError("the frame's topic differs from its message's")
            except (ValueError, msgspec.DecodeError):
                self.malformed += 1
                if timeout_ms > 0:
                    deadline = deadline or time.monotonic() + timeout_ms / 1000
                    timeout_ms = max(0, int((deadline - time.monotonic()) * 1000))
                continue
            self.received += 1
            seq = message.seq
            if seq:
                key = (message.origin, topic)
                last_seq = self._last_seq
                last = last_seq.pop(key, 0)
                last_seq[key] = seq
                if not last:
                    if len(last_seq) > MAX_TRACKED_TOPICS:
                        del last_seq[next(iter(last_seq))]
                elif seq > last + 1:
                    self.missed += seq - last - 1
            return topic, message

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
