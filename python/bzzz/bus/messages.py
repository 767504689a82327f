"""What travels on the bus: msgspec Structs, encoded as MessagePack.

Every struct is `array_like` (a MessagePack array, not a map: smaller and faster to
encode) with its optional fields last, so a newer peer may append fields that an
older one ignores (msgspec skips extra trailing array items). `gc=False`: they hold
only str, int and bytes, so they can never be part of a reference cycle and the
garbage collector need not track them (measurably cheaper at 100,000s a second). `body`
is opaque bytes: a signed gossip envelope (from
`bzzz._core.sign_envelope`) travels in it untouched, and its signature still checks
at the other end.
"""

from __future__ import annotations

import msgspec

# On the event bus a message is ONE ZeroMQ frame: the topic in UTF-8, a NUL byte, then
# the MessagePack `BusMessage` (built in `Publisher.publish`, taken apart in `Subscriber.recv`).
# ZeroMQ filters subscriptions by byte prefix of the first
# frame, so the plain topic has to come first; one frame rather than two ([topic, body])
# because every frame is a separate send/recv call in Python, and the second call costs
# about half the throughput (measured with 700-byte envelopes, benches/bench_bus.py).
# The NUL (never part of a topic) also makes exact-topic subscriptions possible.
TOPIC_END = b"\x00"


class BusMessage(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One event on the bus.

    `origin` names the publishing socket (random, new each time a worker starts) and
    `seq` counts that publisher's messages on this topic from 1; a subscriber sees a
    gap in `seq` as messages it missed (`Subscriber.missed`).
    """

    topic: str
    sender: str  # the publishing worker's name
    msg_id: str  # unique: "<origin>-<n>" unless the publisher gave one
    ts_ms: int  # wall clock, milliseconds since the epoch
    body: bytes
    origin: str = ""
    seq: int = 0  # 0: not numbered


class Request(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A request to a service. The same `request_id` is sent again on every retry."""

    request_id: str
    service: str
    body: bytes
    sender: str = ""


class Reply(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The answer to a request: `body` when `ok`, else `error` says what went wrong."""

    request_id: str
    ok: bool
    body: bytes = b""
    error: str = ""


encoder = msgspec.msgpack.Encoder()
bus_message_decoder = msgspec.msgpack.Decoder(BusMessage)
request_decoder = msgspec.msgpack.Decoder(Request)
reply_decoder = msgspec.msgpack.Decoder(Reply)
