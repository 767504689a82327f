"""The mesh worker: this agent's libp2p host, bridged to the agent's bus (`bzzz.mesh`).

    [workers.mesh]
    module = "bzzz.workers.mesh"
    args = ["--listen", "/ip4/0.0.0.0/tcp/4001", "--bootstrap", "/ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...",
            "--ollama", "http://127.0.0.1:11434", "--max-tasks", "2", "--metrics-port", "9464"]

Everything else of `MeshSettings` can be given as JSON with `--settings` (flags win).

Inside: trio runs the host, gossip, discovery and the capability broadcasts, and sends
the heartbeats (so a hung trio loop is a dead worker); the `mesh` service is answered by
a thread of its own, which hands each request to trio and waits for the answer. Admitted
gossip is published on the bus from the trio thread.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import structlog
import trio
from prometheus_client import start_http_server
from pydantic import ValidationError

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
from bzzz.workers import runtime

log = structlog.get_logger("bzzz.workers.mesh")


def parse_settings(name: str, argv: list[str] | None = None) -> MeshSettings:
    parser = argparse.ArgumentParser(
        prog=f"bzzz.workers.mesh ({name})",
        description="Run this agent's libp2p host: discovery, gossip <-> bus, capability broadcasts.",
    )
    parser.add_argument("--settings", help="MeshSettings as JSON (every field; the flags below override).")
    parser.add_argument("--listen", action="append", help="Multiaddr to listen on; repeat (default /ip4/0.0.0.0/tcp/4001).")
    parser.add_argument("--bootstrap", action="append", help="Peer multiaddr with /p2p/<id>, dialled until connected.")
    parser.add_argument("--no-mdns", action="store_true", help="Do not look for peers on the local network.")
    parser.add_argument("--no-dht", action="store_true", help="Do not use the Kademlia DHT rendezvous.")
    parser.add_argument("--rendezvous", help="The DHT rendezvous name shared by this cluster's agents.")
    parser.add_argument("--interval", type=float, help="Seconds between capability broadcasts (default 10).")
    parser.add_argument("--ollama", action="append", help="Ollama endpoint URL whose models to advertise; repeat.")
    parser.add_argument("--tool", action="append", help="CLI tool to look for on PATH; repeat (replaces the defaults).")
    parser.add_argument("--max-tasks", type=int, help="Tasks this agent takes at once (advertised).")
    parser.add_argument("--metrics-port", type=int, help="Serve Prometheus metrics on this port (0: any free port).")
    args = parser.parse_args(argv)
    raw: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    discovery = raw.setdefault("discovery", {})
    capabilities = raw.setdefault("capabilities", {})
    if args.listen:
        raw["listen"] = args.listen
    if args.bootstrap:
        discovery["bootstrap"] = args.bootstrap
    if args.no_mdns:
        discovery["mdns"] = False
    if args.no_dht:
        discovery["dht"] = False
    if args.rendezvous:
        discovery["rendezvous"] = args.rendezvous
    if args.interval is not None:
        raw["capabilities_interval_s"] = args.interval
    if args.ollama:
        capabilities["ollama_endpoints"] = args.ollama
    if args.tool:
        capabilities["tools"] = args.tool
    if args.max_tasks is not None:
        capabilities["max_tasks"] = args.max_tasks
    if args.metrics_port is not None:
        raw["metrics_port"] = args.metrics_port
    try:
        return MeshSettings.model_validate(raw)
    except ValidationError as err:
        parser.error(str(err))


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

    def __init__(self, rt: runtime.WorkerRuntime) -> None:
        self.publisher = Publisher(rt.run_dir, rt.name)
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


async def handle(node: MeshNode, request: MeshRequest) -> dict[str, Any]:
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


def serve_requests(rt: runtime.WorkerRuntime, node: MeshNode, token: trio.lowlevel.TrioToken, ready: threading.Event) -> None:
    """The `mesh` service, in its own thread: each request runs in trio, answered when done."""

    def handler(request: Request) -> bytes:
        try:
            decoded = request_decoder.decode(request.body)
        except msgspec.ValidationError as err:
            raise ValueError(f"not a mesh request: {err}") from None
        try:
            reply = trio.from_thread.run(handle, node, decoded, trio_token=token)
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


async def run(rt: runtime.WorkerRuntime, settings: MeshSettings) -> None:
    bridge = Bridge(rt)
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


def main(rt: runtime.WorkerRuntime) -> int:
    settings = parse_settings(rt.name)
    trio.run(run, rt, settings)
    return 0


if __name__ == "__main__":
    runtime.run(main)
