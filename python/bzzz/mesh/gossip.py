"""py-libp2p's pubsub and gossipsub, set up for Bzzz: nothing Python acts on before the gate.

Three subclasses of the library's classes, each overriding one method, and one patched
class, because 0.8.1 offers no hook for these (docs/notes/py-libp2p-0.8.1.md):

* `GatedPubsub.validate_msg` runs *every* inbound message, on any topic, through the Rust
  core's `Gate` (signature, signer == the gossip origin peer, schema, size, hops, TTL,
  dedup) before the router may forward it. The library's own validators are per topic (a
  message on a topic without one would be forwarded unchecked) and cached by message id
  (a cached "valid" would skip the gate's dedup on a replay); this replaces both.
* `GatedPubsub.notify_subscriptions` hands each admitted envelope to one bounded channel
  instead of a 32-slot channel per topic that drops with a warning; a full channel is
  counted.
* `GatedPubsub._is_msg_seen` counts the router's duplicates (normal: every message reaches
  a node from several peers) so they can be told apart from refusals.
* `CountedGossipSub._check_spam_protection` counts what the per-sender rate limit drops.
* `install_library_fixes` replaces the per-peer outbound queue class with one of our size
  that counts its drops, and makes the message cache use our message ids (0.8.1 keys it
  by sender + seqno whatever the pubsub's id function is). Both are process-wide, so one
  process runs one mesh node. It refuses any py-libp2p but the one it was written for
  (`LIBP2P_VERSION`); tests/mesh/test_library_fixes.py checks that what it replaces is still
  there, in the shape it expects.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, cast

import trio
from libp2p.abc import IHost
from libp2p.exceptions import ValidationError
from libp2p.peer.id import ID
from libp2p.pubsub import gossipsub as gossipsub_module
from libp2p.pubsub import mcache as mcache_module
from libp2p.pubsub import pubsub as pubsub_module
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue
from libp2p.pubsub.utils import maybe_consume_signed_record as _library_consume_signed_record

from bzzz._core import Envelope, EnvelopeRejected, Gate, message_id
from bzzz.mesh.metrics import MeshMetrics
from bzzz.mesh.settings import GossipSettings

_ids: dict[bytes, bytes] = {}
_IDS_KEPT = 4096


def gossip_message_id(msg: rpc_pb2.Message) -> bytes:
    """The content-based gossipsub message id every implementation must compute alike:
    the first 20 bytes of BLAKE2b-256 of the envelope (see `bzzz._core.message_id`).

    Remembered for the last few thousand messages: the library asks for the id of each
    copy of a message five or six times (seen check, validation, cache, delivery)."""
    data = msg.data
    known = _ids.get(data)
    if known is None:
        if len(_ids) >= _IDS_KEPT:
            _ids.clear()
        known = _ids[data] = message_id(data)
    return known


_records: dict[tuple[bytes, bytes], float] = {}
_RECORDS_KEPT = 4096
_RECORD_RECHECK_S = 600.0


def _consume_signed_record_once(msg: rpc_pb2.RPC, host: Any, peer_id: ID) -> bool:
    """`maybe_consume_signed_record`, but a peer's unchanged record is checked once in a while
    rather than on every RPC. 0.8.1 verifies the signed peer record that comes with every
    RPC (twice for RPCs with control messages): an ed25519 verification and two protobuf
    parses per RPC, a tenth of a node's work, for a record that changes only when the
    peer's addresses do."""
    if not msg.HasField("senderRecord"):
        return True
    key = (peer_id.to_bytes(), msg.senderRecord)
    now = time.monotonic()
    checked = _records.get(key)
    if checked is not None and now - checked < _RECORD_RECHECK_S:
        return True
    accepted: bool = _library_consume_signed_record(msg, host, peer_id)
    if accepted:
        if len(_records) >= _RECORDS_KEPT:
            _records.clear()
        _records[key] = now
    return accepted


class _CountingRpcQueue(RpcQueue):
    on_drop: Callable[[], None] = staticmethod(lambda: None)
    default_size = 32

    def __init__(self, max_size: int | None = None, **kwargs: Any) -> None:
        super().__init__(max_size if max_size is not None else self.default_size, **kwargs)

    def push(self, rpc: rpc_pb2.RPC, priority: bool = False) -> bool:
        ok = super().push(rpc, priority)
        if not ok:
            type(self).on_drop()
        return ok


LIBP2P_VERSION = "0.8.1"  # the py-libp2p whose internals install_library_fixes replaces


class LibraryVersionError(RuntimeError):
    """The installed py-libp2p is not the one `install_library_fixes` was written for."""


def _installed_libp2p() -> str:
    return metadata.version("libp2p")


def check_library_version() -> None:
    """LibraryVersionError unless the installed py-libp2p is `LIBP2P_VERSION`: the fixes
    replace its private classes and functions, which any release may rename or reshape, and a
    fix that no longer applies would fail silently."""
    installed = _installed_libp2p()
    if installed != LIBP2P_VERSION:
        raise LibraryVersionError(
            f"py-libp2p {installed} is installed, but bzzz.mesh.gossip patches the internals of py-libp2p "
            f"{LIBP2P_VERSION} (docs/notes/py-libp2p-{LIBP2P_VERSION}.md): install libp2p=={LIBP2P_VERSION}, or "
            f"check each fix in install_library_fixes against {installed} and update LIBP2P_VERSION"
        )


def install_library_fixes(outbound_queue: int, on_outbound_drop: Callable[[], None]) -> None:
    """Process-wide changes to py-libp2p 0.8.1, made before any peer connects (and refused,
    LibraryVersionError, on any other version):

    * every per-peer outbound queue holds `outbound_queue` RPCs and reports each one it
      refuses;
    * the message cache keys messages by our message id. 0.8.1's cache ignores the
      pubsub's `msg_id_constructor` and keys by sender + seqno, so the ids it gossips in
      IHAVE are not the ids anyone else (or its own seen cache) uses: go-libp2p then asks
      for every message three times, and IWANTs for our ids find nothing in the cache;
    * yamux acknowledges received data the way go-yamux does (see below);
    * a peer's signed peer record is verified when it changes, not on every RPC.
    """
    check_library_version()
    # go-yamux's window updates: one per half window read, not one per read. 0.8.1's
    # default sends a frame back for every message received, a third of a node's work.
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    _CountingRpcQueue.default_size = outbound_queue
    _CountingRpcQueue.on_drop = staticmethod(on_outbound_drop)
    # setattr: py-libp2p does not export these names (mypy refuses a plain assignment to them).
    setattr(pubsub_module, "RpcQueue", _CountingRpcQueue)  # noqa: B010
    setattr(mcache_module, "default_msg_id_fn", gossip_message_id)  # noqa: B010
    setattr(pubsub_module, "maybe_consume_signed_record", _consume_signed_record_once)  # noqa: B010
    setattr(gossipsub_module, "maybe_consume_signed_record", _consume_signed_record_once)  # noqa: B010


class CountedGossipSub(GossipSub):
    metrics: MeshMetrics

    def _check_spam_protection(self, peer_id: ID, msg: rpc_pb2.Message) -> bool:
        accepted: bool = super()._check_spam_protection(peer_id, msg)
        if not accepted:
            self.metrics.dropped.labels("rate_limit").inc()
        return accepted


_MAX_PENDING = 10_000


class GatedPubsub(Pubsub):
    """Pubsub whose inbound messages pass `gate` first and come out of `admitted`."""

    gate: Gate
    metrics: MeshMetrics
    admitted: trio.MemorySendChannel[tuple[Envelope, bytes]]

    def setup(self, gate: Gate, metrics: MeshMetrics, admitted: trio.MemorySendChannel[tuple[Envelope, bytes]]) -> None:
        self.gate = gate
        self.metrics = metrics
        self.admitted = admitted
        # Envelopes that passed the gate, by gossip message id, until notify_subscriptions
        # (called right after validation, in the same task) takes them.
        self._passed: dict[bytes, Envelope] = {}

    def _is_msg_seen(self, msg: rpc_pb2.Message) -> bool:
        seen: bool = super()._is_msg_seen(msg)
        if seen:
            self.metrics.gossip_duplicates.inc()
        return seen

    async def validate_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        if msg_forwarder == self.my_id:
            return  # our own publish: signed a moment ago by this node
        try:
            envelope = self.gate.admit(msg.data, source_peer=msg.from_id)
        except EnvelopeRejected as rejected:
            self.metrics.rejected.labels(rejected.reason).inc()
            raise ValidationError(str(rejected)) from None
        if list(msg.topicIDs) != [envelope.topic]:
            # The envelope's signed topic is the truth; gossip on another topic would reach
            # subscribers the sender did not address.
            self.metrics.rejected.labels("schema").inc()
            raise ValidationError(f"envelope for {envelope.topic!r} gossiped on {list(msg.topicIDs)!r}")
        if len(self._passed) > _MAX_PENDING:
            self._passed.clear()  # only if push_msg keeps stopping between the two; never expected
        self._passed[gossip_message_id(msg)] = envelope

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        envelope = self._passed.pop(gossip_message_id(publish_message), None)
        if envelope is None:
            return  # our own publish
        if envelope.topic not in self.topic_ids:
            return  # relayed for the mesh, not for us
        try:
            self.admitted.send_nowait((envelope, publish_message.from_id))
        except trio.WouldBlock:
            self.metrics.dropped.labels("inbound_queue").inc()
        else:
            self.metrics.received.labels(envelope.type).inc()


def make_router(settings: GossipSettings, metrics: MeshMetrics) -> CountedGossipSub:
    from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11

    router = CountedGossipSub(
        # Not 1.2: py-libp2p answers *every* message with an IDONTWANT to each mesh peer
        # (go-libp2p only for messages over 1 KiB), which for our sub-KiB envelopes halves
        # the throughput of a node and brings nothing. go-libp2p speaks 1.1 as well.
        protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
        degree=settings.degree,
        degree_low=settings.degree_low,
        degree_high=settings.degree_high,
        heartbeat_interval=cast(int, settings.heartbeat_s),  # typed int by the library; trio sleeps a float
        heartbeat_initial_delay=0.1,
        # Adaptive gossip stretches the heartbeat to 30-60 s when it judges the network
        # unhealthy, which on a small cluster is most of the time.
        adaptive_gossip_enabled=False,
        spam_protection_enabled=True,
        max_messages_per_topic_per_second=settings.max_publish_rate,
    )
    router.metrics = metrics
    return router


def make_pubsub(host: IHost, router: CountedGossipSub, settings: GossipSettings) -> GatedPubsub:
    return GatedPubsub(
        host,
        router,
        strict_signing=True,
        msg_id_constructor=gossip_message_id,
        seen_ttl=settings.seen_ttl_s,
        # Entries leave the seen cache only when swept; sweeping once a TTL keeps the TTL true.
        sweep_interval=max(1, min(60, settings.seen_ttl_s)),
        max_inbound_rpc_size=max(settings.max_message_bytes * 4, 1 << 20),
    )
