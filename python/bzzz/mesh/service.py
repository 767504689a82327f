"""The mesh worker's side of the `mesh` bus service: this agent's libp2p host, bridged to its bus.

    MeshClient ──Request(MeshRequest)──> svc-mesh.sock ──> service thread ──trio──> dispatch(node, request)
               <──Reply(JSON)───────────
    MeshNode ──admitted gossip──> Bridge ──events──> `gossip/<topic>`, `mesh/peers`

The wire (the service name, the request structs, the event topics) is `bzzz.mesh.client`'s,
which the other workers import without loading libp2p.

Trio runs the host, gossip, discovery and the capability broadcasts, and sends the heartbeats
(so a hung trio loop is a dead worker); the `mesh` service is answered by a thread of its own,
which hands each request to trio and waits for the answer. Admitted gossip is published on the
bus from the trio thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
import trio
from prometheus_client import start_http_server

from bzzz._core import Envelope, EnvelopeRejected
from bzzz.bus import Publisher, Request, Service
from bzzz.capabilities import advertised
from bzzz.log.store import log_key
from bzzz.mesh.client import (
    PEERS_TOPIC,
    SERVICE,
    Announce,
    ChannelPeers,
    Forward,
    Join,
    Leave,
    MeshRequest,
    PeerEvent,
    Peers,
    Publish,
    Replicate,
    ReplicationJob,
    Status,
    Tasks,
    gossip_bus_topic,
    request_decoder,
)
from bzzz.mesh.identity import load_or_create
from bzzz.mesh.metrics import MeshMetrics
from bzzz.mesh.node import MeshNode
from bzzz.mesh.peers import Change
from bzzz.mesh.settings import MeshSettings
from bzzz.paths import DataDir
from bzzz.runtime import WorkerRuntime

log = structlog.get_logger("bzzz.mesh.service")


def log_key_reader(data_dir: Path) -> Callable[[], str | None]:
    """The agent's log key, read once the log worker has created the log."""
    found: list[str] = []

    def read() -> str | None:
        if not found and (key := log_key(DataDir(data_dir).log)) is not None:
            found.append(key.hex())
        return found[0] if found else None

    return read


class Bridge:
    """The trio side of the bus: admitted gossip and peer changes go out as events."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.metrics: MeshMetrics | None = None  # the node's, once it exists

    def _dropped(self) -> None:
        if self.metrics is not None:
            self.metrics.dropped.labels("bus").inc()

    def envelope(self, envelope: Envelope) -> None:
        if not self.publisher.publish(gossip_bus_topic(envelope.topic), envelope.to_bytes(), msg_id=envelope.msg_id):
            self._dropped()

    def peer_change(self, change: Change) -> None:
        event = PeerEvent(change.kind, change.peer_id, change.node_id)  # type: ignore[arg-type]
        if not self.publisher.publish(PEERS_TOPIC, msgspec.json.encode(event)):
            self._dropped()


async def dispatch(node: MeshNode, request: MeshRequest) -> Any:
    """One request, answered by the node (in trio); the reply, as JSON-able data."""
    match request:
        case Publish(type=type_, topic=topic, payload=payload, ttl=ttl):
            msg_id, data = await node.publish_envelope(type_, topic, payload, ttl=ttl)
            return {"msg_id": msg_id, "envelope": data.decode()}
        case Forward(envelope=envelope):
            return {"envelope": (await node.forward(envelope.encode())).decode()}
        case ChannelPeers(topic=topic):
            return node.channel_peers(topic)
        case Announce(follows=follows, discussions=discussions):
            node.announce(follows, discussions)
        case Replicate(key=key, peers=peers, follow=follow):
            try:
                wanted = bytes.fromhex(key)
                if len(wanted) != 32:
                    raise ValueError
            except ValueError:
                raise ValueError(f"a log key is 64 hex digits, got {key!r}") from None
            return node.start_replicating(wanted, peers, follow=follow)
        case ReplicationJob(key=key):
            return node.job(bytes.fromhex(key)) or {"key": key, "state": "failed", "error": "no such replication"}
        case Join(topic=topic):
            await node.join(topic)
        case Leave(topic=topic):
            await node.leave(topic)
        case Peers():
            return {"peers": node.peers.snapshot()}
        case Status():
            return node.status()
        case Tasks(active=active, max=maximum):
            node.set_tasks(active, maximum)
    return {}


def serve_requests(rt: WorkerRuntime, node: MeshNode, token: trio.lowlevel.TrioToken, ready: threading.Event) -> None:
    """The `mesh` service, in its own thread: each request runs in trio, answered when done."""

    def handler(request: Request) -> bytes:
        try:
            decoded = request_decoder.decode(request.body)
        except msgspec.ValidationError as err:
            raise ValueError(f"not a mesh request: {err}") from None
        try:
            reply = trio.from_thread.run(dispatch, node, decoded, trio_token=token)
        except EnvelopeRejected as err:
            raise ValueError(f"the envelope would be refused ({err.reason}): {err}") from None
        except LookupError as err:
            raise ValueError(str(err)) from None
        return msgspec.json.encode(reply)

    with Service(rt.run_dir, SERVICE, handler) as service:
        ready.set()
        while not rt.stopping.is_set():
            try:
                service.serve_one(0.2)
            except trio.RunFinishedError:
                return


async def run(rt: WorkerRuntime, settings: MeshSettings) -> None:
    """Run this agent's host and serve `mesh` until the worker is asked to stop (call with `trio.run`)."""
    bridge = Bridge(Publisher(rt.run_dir, rt.name))
    node = MeshNode(
        load_or_create(rt.data_dir),
        settings,
        node_id=rt.node_id or "bzzz",
        log_key=log_key_reader(rt.data_dir),
        on_envelope=bridge.envelope,
        on_peer_change=bridge.peer_change,
        on_advertised=lambda payload: advertised.write(rt.run_dir, payload),
        data_dir=rt.data_dir,
    )
    bridge.metrics = node.metrics
    if settings.metrics_port is not None:
        server, _ = start_http_server(settings.metrics_port, registry=node.metrics.registry)
        log.info("metrics served", port=server.server_port)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            ready = threading.Event()
            thread = threading.Thread(
                target=serve_requests, args=(rt, node, trio.lowlevel.current_trio_token(), ready), daemon=True
            )
            thread.start()
            await trio.to_thread.run_sync(ready.wait)
            rt.heartbeat()  # ready: the host listens and the service is bound
            while not rt.stopping.is_set():
                rt.heartbeat()
                await trio.sleep(rt.interval / 4)
            nursery.cancel_scope.cancel()
        await trio.to_thread.run_sync(thread.join, 2.0)
    finally:
        bridge.publisher.close()


__all__ = ["Bridge", "dispatch", "log_key_reader", "run", "serve_requests"]
