"""One mesh node: a py-libp2p host that speaks Noise and yamux only, gossips through the gate,
discovers peers, broadcasts this agent's capabilities and keeps the peer table.

Runs in trio (py-libp2p's runtime). The `mesh` service (`bzzz.mesh.service`) connects it to the
agent's bus; benchmarks and tests may drive it directly. One node per process (see
`bzzz.mesh.gossip.install_library_fixes`).
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import multiaddr
import structlog
import trio
from libp2p import new_host
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.discovery.events.peerDiscovery import peerDiscovery
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from bzzz._core import Envelope, Gate, Limits, MerkleLog, forward_envelope, sign_envelope, verify_envelope
from bzzz.capabilities import CapabilityDetector, Detected
from bzzz.log.replica import Replica, held_keys
from bzzz.mesh.discovery import Dialer, rendezvous
from bzzz.mesh.gossip import GatedPubsub, install_library_fixes, make_pubsub, make_router
from bzzz.mesh.identity import Identity
from bzzz.mesh.metrics import MeshMetrics
from bzzz.mesh.peers import Change, PeerTable
from bzzz.mesh.replication import PROTOCOL as REPLICATION
from bzzz.mesh.replication import Server as ReplicationServer
from bzzz.mesh.replication import fetch as fetch_log
from bzzz.mesh.replication import follow as follow_log
from bzzz.mesh.settings import MeshSettings
from bzzz.paths import DataDir, merkle_dir

log = structlog.get_logger("bzzz.mesh")

TOPIC_CAPABILITIES = "bzzz/capabilities"
TOPIC_HELP = "bzzz/tasks/help"
TOPIC_ESCALATION = "bzzz/meta/escalation"
STANDING_TOPICS = (TOPIC_CAPABILITIES, TOPIC_HELP, TOPIC_ESCALATION)

# Detecting is cheap but probes Ollama over HTTP: often enough to notice a new model within
# seconds, without polling Ollama every second.
DETECT_EVERY_S = 5.0
REPLICATE_TIMEOUT_S = 600.0
FOLLOW_RETRY_S = 2.0
CONNECTED_MAX = 64  # peer ids a capability broadcast lists as connected (contract: at most 64)


class MeshNode:
    def __init__(
        self,
        identity: Identity,
        settings: MeshSettings,
        *,
        node_id: str,
        log_key: Callable[[], str | None] = lambda: None,
        on_envelope: Callable[[Envelope], None] = lambda envelope: None,
        on_peer_change: Callable[[Change], None] = lambda change: None,
        on_advertised: Callable[[dict[str, Any]], None] = lambda payload: None,
        which: Callable[[str], str | None] = shutil.which,
        version: str | None = None,
        data_dir: Path | None = None,
    ) -> None:
        self.identity = identity
        self.settings = settings
        self.data_dir = data_dir  # serves and keeps replicated logs when set
        self.node_id = node_id
        self.log_key = log_key
        self.on_envelope = on_envelope
        self.on_peer_change = on_peer_change
        self.on_advertised = on_advertised  # what was broadcast, for the agent's other workers
        self.metrics = MeshMetrics()
        gossip = settings.gossip
        self.gate = Gate(
            Limits(max_size=gossip.max_message_bytes, max_hops=gossip.max_hops, max_ttl=gossip.max_ttl_s),
            safeguards=gossip.safeguards.core(),
        )
        self.peers = PeerTable(settings.capabilities_interval_s)
        self.detector = CapabilityDetector(settings.capabilities, which=which)
        self.version = version
        self.active_tasks = 0
        self.max_tasks = settings.capabilities.max_tasks
        self.hmmm: dict[str, Any] | None = None  # what the hmmm worker says of discussions (capabilities)
        self.listen_addrs: list[str] = []
        self._last_seq = 0
        self._capabilities: Detected | None = None
        self._broadcast_soon = trio.Event()
        self._pubsub: GatedPubsub | None = None
        self._dialer: Dialer | None = None
        self._host: Any = None
        self._nursery: trio.Nursery | None = None
        self._replicas: dict[bytes, Replica] = {}
        self._following: dict[bytes, trio.CancelScope] = {}
        self._jobs: dict[bytes, dict[str, Any]] = {}
        self._transfers: dict[bytes, trio.Lock] = {}  # one transfer into a replica at a time
        self._advertised_lengths: dict[bytes, int] = {}  # followed logs: their writers' last word
        self._own_length = OwnLogLength(DataDir(data_dir).log if data_dir is not None else None)

    # --- what the rest of the agent calls -----------------------------------------------

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id.to_base58()

    def next_seq(self) -> int:
        """Microseconds since the epoch, strictly increasing: a restarted node keeps counting
        up without storing anything, so peers never mistake new news for old."""
        self._last_seq = max(self._last_seq + 1, time.time_ns() // 1000)
        return self._last_seq

    async def publish(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int = 60) -> str:
        """Sign `payload` as this agent and gossip it; its msg_id. Raises EnvelopeRejected
        for a payload a receiver would refuse (checked by the core before sending)."""
        msg_id, _ = await self.publish_envelope(type, topic, payload, ttl=ttl)
        return msg_id

    async def publish_envelope(
        self, type: str, topic: str, payload: dict[str, Any], *, ttl: int = 60
    ) -> tuple[str, bytes]:
        """`publish`, returning (msg_id, the signed envelope).

        Our own message passes our own gate first, as peers' do: its msg_id is taken (an echo
        is a duplicate), and the discussion safeguards hold for this agent too. A flood from
        our own workers, or a post to a discussion past its TTL, is refused here, with the
        reason, instead of being dropped silently by every peer."""
        msg_id = secrets.token_hex(16)
        data = sign_envelope(
            self.identity.secret_key, type, topic, self.node_id, payload, msg_id=msg_id, seq=self.next_seq(), ttl=ttl
        )
        self.gate.admit(data)  # raises EnvelopeRejected to the caller (not counted: nobody sent it to us)
        await self.publish_signed(topic, data)
        self.metrics.published.labels(type).inc()
        return msg_id, data

    async def forward(self, data: bytes) -> bytes:
        """Relay an envelope as this agent with hop_count + 1 (a help request, say); the relayed
        copy. EnvelopeRejected('hops') past the hop limit: the core will not relay it."""
        relayed = forward_envelope(data, self.identity.secret_key, self.gate.limits)
        await self.publish_signed(verify_envelope(relayed, self.gate.limits).topic, relayed)
        self.metrics.published.labels("relayed").inc()
        return relayed

    def channel_peers(self, topic: str) -> dict[str, list[str]]:
        """Who is subscribed to `topic` as far as this node knows, and who is in its mesh for it."""
        pubsub = self._require_pubsub()
        subscribed = pubsub.peer_topics.get(topic, set())
        mesh = pubsub.router.mesh.get(topic, set()) if hasattr(pubsub.router, "mesh") else set()
        return {"subscribed": sorted(str(p) for p in subscribed), "mesh": sorted(str(p) for p in mesh)}

    def announce(self, follows: bool, discussions: list[str]) -> None:
        """The hmmm worker's part of our capability broadcasts: sent on the next tick if it changed."""
        hmmm = {"follows": follows, "discussions": sorted(discussions)[:64]}
        if hmmm != self.hmmm:
            self.hmmm = hmmm
            self._broadcast_soon.set()

    async def publish_signed(self, topic: str, data: bytes) -> None:
        """Gossip an envelope this node signed (or forwarded) itself."""
        await self._require_pubsub().publish(topic, data)

    async def join(self, topic: str) -> None:
        """Receive a topic's messages too (an issue's HMMM channel, say)."""
        await self._require_pubsub().subscribe(topic)

    async def leave(self, topic: str) -> None:
        if topic not in STANDING_TOPICS:
            await self._require_pubsub().unsubscribe(topic)

    def set_tasks(self, active: int, maximum: int | None = None) -> None:
        """The executor's load changed: say so on the next tick rather than the next period."""
        changed = active != self.active_tasks or (maximum is not None and maximum != self.max_tasks)
        self.active_tasks = active
        if maximum is not None:
            self.max_tasks = maximum
        if changed:
            self._broadcast_soon.set()

    def status(self) -> dict[str, Any]:
        pubsub = self._pubsub
        return {
            "node_id": self.node_id,
            "peer_id": self.peer_id,
            "listen": self.listen_addrs,
            "connected": sorted(str(p) for p in self._dialer.connected_peers()) if self._dialer else [],
            "topics": sorted(pubsub.topic_ids) if pubsub else [],
            "capabilities": self._capabilities.payload(
                node_id=self.node_id,
                peer_id=self.peer_id,
                log_key_hex="0" * 64,
                active_tasks=self.active_tasks,
                max_tasks=self.max_tasks,
            )
            if self._capabilities is not None
            else None,
            "safeguards": self.settings.gossip.safeguards.model_dump(),
            "peers": self.peers.snapshot(),
            "metrics": self.metrics.snapshot(),
        }

    # --- running ------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        settings = self.settings
        install_library_fixes(settings.gossip.outbound_queue, self.metrics.dropped.labels("outbound_queue").inc)
        key_pair = self.identity.libp2p_key_pair()
        host = new_host(
            key_pair=key_pair,
            # Noise only: the default also offers plaintext, secio and TLS.
            sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)},
            # yamux only: mplex is not spoken by go-libp2p any more.
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            enable_mDNS=settings.discovery.mdns,
        )
        router = make_router(settings.gossip, self.metrics)
        pubsub = make_pubsub(host, router, settings.gossip)
        admitted_send, admitted_recv = trio.open_memory_channel[tuple[Envelope, bytes]](settings.gossip.inbound_queue)
        pubsub.setup(self.gate, self.metrics, admitted_send)
        dialer = Dialer(
            host,
            self.metrics,
            initial_s=settings.discovery.redial_initial_s,
            max_s=settings.discovery.redial_max_s,
        )
        self._dialer = dialer
        mdns_handler = (lambda info: dialer.want_from_thread(info, "mdns")) if settings.discovery.mdns else None
        if mdns_handler is not None:
            peerDiscovery.register_peer_discovered_handler(mdns_handler)
        try:
            async with (
                host.run(listen_addrs=[multiaddr.Multiaddr(a) for a in concrete_listen_addrs(settings.listen)]),
                background_trio_service(pubsub),
                background_trio_service(router),
            ):
                await pubsub.wait_until_ready()
                self._pubsub = pubsub
                self._host = host
                if self.data_dir is not None:
                    server = ReplicationServer(self.data_dir, self.metrics, self.log_key)
                    host.set_stream_handler(REPLICATION, server.handle)
                for topic in STANDING_TOPICS:
                    await pubsub.subscribe(topic)
                self.listen_addrs = [str(a) for a in host.get_addrs()]
                for addr in settings.discovery.bootstrap:
                    dialer.want_addr(addr, "bootstrap", permanent=True)
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(dialer.run)
                    if self.data_dir is not None:
                        for key in self._followed_keys():
                            self._start_following(key)
                    nursery.start_soon(self._deliver, admitted_recv)
                    nursery.start_soon(self._broadcast_capabilities)
                    nursery.start_soon(self._expire_peers)
                    if settings.discovery.dht:
                        nursery.start_soon(self._run_dht, host, dialer)
                    log.info("mesh up", peer_id=self.peer_id, listen=self.listen_addrs)
                    task_status.started(self.listen_addrs)
        finally:
            if mdns_handler is not None:
                peerDiscovery.unregister_peer_discovered_handler(mdns_handler)

    async def _run_dht(self, host: Any, dialer: Dialer) -> None:
        from libp2p.kad_dht.kad_dht import DHTMode, KadDHT

        dht = KadDHT(host, DHTMode.SERVER)
        async with background_trio_service(dht):
            await rendezvous(dht, dialer, self.settings.discovery.rendezvous, self.settings.discovery.dht_interval_s)

    async def _deliver(self, admitted: trio.MemoryReceiveChannel[tuple[Envelope, bytes]]) -> None:
        async for envelope, _source in admitted:
            if envelope.type == "capabilities":
                self._heard_length(envelope.payload)
                change = self.peers.observe(envelope)
                if change is not None:
                    self.metrics.live_agents.set(len(self.peers))
                    log.info("peer " + change.kind, peer=change.peer_id, node_id=change.node_id)
                    self.on_peer_change(change)
            self.on_envelope(envelope)

    async def _expire_peers(self) -> None:
        while True:
            await trio.sleep(self.settings.capabilities_interval_s / 2)
            for change in self.peers.expire():
                self.metrics.live_agents.set(len(self.peers))
                log.info("peer left", peer=change.peer_id, node_id=change.node_id)
                self.on_peer_change(change)

    async def _broadcast_capabilities(self) -> None:
        interval = self.settings.capabilities_interval_s
        last_sent = float("-inf")
        last_fingerprint = ""
        last_detect = float("-inf")
        announced_to: set[str] = set()
        last_volatile: tuple[list[str], int] = ([], 0)
        while True:
            # A peer that connected since the last broadcast has not heard one yet: tell it
            # now (after a heartbeat, so that it is in the topic's mesh), not a period later.
            connected = {str(p) for p in self._dialer.connected_peers()} if self._dialer else set()
            newcomers = connected - announced_to
            announced_to = connected
            if newcomers:
                await trio.sleep(self.settings.gossip.heartbeat_s)
                last_fingerprint = ""
            now = time.monotonic()
            if now - last_detect >= min(DETECT_EVERY_S, interval) or self._capabilities is None:
                self._capabilities = await trio.to_thread.run_sync(self.detector.detect)
                last_detect = now
            caps = self._capabilities
            fingerprint = caps.fingerprint() + f"/{self.max_tasks}/{self.active_tasks}/{self.log_key()}/{self.hmmm}"
            volatile = (self._connected(), self._own_length())
            if broadcast_due(
                changed=fingerprint != last_fingerprint,
                volatile_changed=volatile != last_volatile,
                since_last_s=now - last_sent,
                interval_s=interval,
            ):
                payload = self.capability_payload(caps)
                try:
                    await self.publish("capabilities", TOPIC_CAPABILITIES, payload, ttl=max(60, int(3 * interval)))
                except Exception as err:  # a broadcast that fails now is retried next period
                    log.warning("capability broadcast failed", error=repr(err))
                if fingerprint != last_fingerprint:
                    try:
                        self.on_advertised(payload)
                    except OSError as err:
                        log.warning("could not hand the advertised capabilities on", error=repr(err))
                last_sent, last_fingerprint, last_volatile = now, fingerprint, volatile
            self._broadcast_soon = trio.Event()
            with trio.move_on_after(min(interval, DETECT_EVERY_S) / 2):
                await self._broadcast_soon.wait()

    def capability_payload(self, caps: Detected) -> dict[str, Any]:
        payload = caps.payload(
            node_id=self.node_id,
            peer_id=self.peer_id,
            log_key_hex=self.log_key() or "0" * 64,
            active_tasks=self.active_tasks,
            max_tasks=self.max_tasks,
        )
        if self.version is not None:
            payload["version"] = self.version
        # Peers judge our liveness by our own period, not theirs.
        payload["interval_ms"] = int(self.settings.capabilities_interval_s * 1000)
        payload["addrs"] = self.listen_addrs[:16]
        if self.hmmm is not None:
            payload["hmmm"] = self.hmmm
        if self.data_dir is not None:
            payload["replicas"] = held_keys(self.data_dir)[:64]  # so a log outlives its writer's downtime
        # Who we are connected to (monitors draw the topology from it) and how long our log is
        # (a follower's lag is this less its copy's length).
        payload["connected"] = self._connected()
        payload["log_length"] = self._own_length()
        return payload

    def _connected(self) -> list[str]:
        return sorted(str(p) for p in self._dialer.connected_peers())[:CONNECTED_MAX] if self._dialer else []

    # --- log replication (`bzzz.mesh.replication`) -------------------------------------

    def _replica(self, key: bytes) -> Replica:
        assert self.data_dir is not None
        replica = self._replicas.get(key)
        if replica is None:
            replica = Replica(self.data_dir, key)
            try:
                replica.open()
            except FileNotFoundError:
                pass  # created from the first peer's head
            self._replicas[key] = replica
        return replica

    def sources(self, key: bytes) -> list[str]:
        """Peers (base58 ids) that have the log: its writer first (by id, then at the addresses it
        advertises), then those holding a replica."""
        hexkey = key.hex()
        writers, holders = [], []
        for peer in self.peers.snapshot():
            caps = peer["capabilities"]
            if caps.get("log_key") == hexkey:
                writers.append(peer["peer_id"])
                # A writer heard of through others (no connection of ours) is dialled where it listens.
                writers.extend(a for a in caps.get("addrs") or [] if isinstance(a, str) and "/p2p/" in a)
            elif hexkey in (caps.get("replicas") or []):
                holders.append(peer["peer_id"])
        return writers + holders

    async def _peer(self, peer: str) -> ID:
        if peer.startswith("/"):
            info = info_from_p2p_addr(multiaddr.Multiaddr(peer))
            await self._host.connect(info)
            return info.peer_id
        return ID.from_base58(peer)

    async def _new_stream(self, peer: ID) -> Any:
        return await self._host.new_stream(peer, [REPLICATION])

    async def _fetch(self, peer: ID, replica: Replica) -> int:
        async with self._transfers.setdefault(replica.key, trio.Lock()):
            try:
                return await fetch_log(self._new_stream, peer, replica, self.metrics)
            finally:
                self._show_lag(replica.key)

    def _heard_length(self, payload: dict[str, Any]) -> None:
        """A capability broadcast: its writer's log length, if this agent follows that log."""
        length = payload.get("log_length")
        try:
            key = bytes.fromhex(str(payload.get("log_key")))
        except ValueError:
            return
        # Not a bool (an int to Python) and not negative: a peer's payload is only schema-checked.
        if key in self._following and isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            self._advertised_lengths[key] = length
            self._show_lag(key)

    def _show_lag(self, key: bytes) -> None:
        """bzzz_replication_lag_entries of a followed log whose writer said its length (else unknown: not shown)."""
        advertised = self._advertised_lengths.get(key)
        replica = self._replicas.get(key)
        if advertised is not None and replica is not None:
            held = replica.length if replica.log is not None else 0
            # A broadcast older than the entries already fetched is not a negative lag.
            self.metrics.replication_lag.labels(key.hex()[:16]).set(max(advertised - held, 0))

    async def replicate(self, key: bytes, peers: list[str] | None = None, *, follow: bool = False) -> dict[str, Any]:
        """Bring this agent's replica of log `key` up to date from `peers` (multiaddrs or peer ids;
        default: whoever advertises it), verifying everything; with `follow`, keep it up to date
        (also after a restart). Raises LookupError if no peer could serve it."""
        if self.data_dir is None or self._host is None:
            raise RuntimeError("this mesh node keeps no replicas")
        replica = self._replica(key)
        candidates = peers or self.sources(key)
        problems: list[str] = []
        for candidate in candidates:
            try:
                peer = await self._peer(candidate)
                with trio.fail_after(REPLICATE_TIMEOUT_S):
                    length = await self._fetch(peer, replica)
            except Exception as err:  # refused, unreachable, slow: the next peer may do
                problems.append(f"{candidate}: {err}")
                continue
            if follow:
                self._start_following(key, [candidate])
            return {
                "key": key.hex(),
                "length": length,
                "peer": str(peer),
                "problems": problems,
                "following": key in self._following,
            }
        if follow and replica.log is not None:
            self._start_following(key)
            return {"key": key.hex(), "length": replica.length, "peer": None, "problems": problems, "following": True}
        raise LookupError(f"no peer served log {key.hex()}: " + ("; ".join(problems) or "nobody advertises it"))

    def start_replicating(self, key: bytes, peers: list[str] | None = None, *, follow: bool = False) -> dict[str, Any]:
        """`replicate` in the background (a long transfer must not hold up the mesh service);
        its job: {"state": "running" | "done" | "failed", ...}. `job(key)` tells how it went."""
        if self._nursery is None:
            raise RuntimeError("the mesh node is not running yet")
        job = self._jobs.get(key)
        if job is not None and job["state"] == "running":
            return job
        job = self._jobs[key] = {"key": key.hex(), "state": "running"}

        async def run() -> None:
            try:
                job.update(await self.replicate(key, peers, follow=follow), state="done")
            except Exception as err:
                job.update(state="failed", error=str(err))

        self._nursery.start_soon(run)
        return job

    def job(self, key: bytes) -> dict[str, Any] | None:
        return self._jobs.get(key)

    def _followed_keys(self) -> list[bytes]:
        assert self.data_dir is not None
        path = DataDir(self.data_dir).following
        try:
            return [bytes.fromhex(k) for k in json.loads(path.read_text())]
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            log.warning("cannot read the logs to follow; following none", path=str(path), error=str(err))
            return []

    def _start_following(self, key: bytes, peers: list[str] | None = None) -> None:
        assert self.data_dir is not None and self._nursery is not None
        if key in self._following:
            return
        scope = trio.CancelScope()
        self._following[key] = scope
        path = DataDir(self.data_dir).following
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all: a crash mid-write must not forget every log followed.
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(k.hex() for k in self._following)))
        tmp.replace(path)
        self._nursery.start_soon(self._follow, key, peers, scope)

    async def _follow(self, key: bytes, peers: list[str] | None, scope: trio.CancelScope) -> None:
        replica = self._replica(key)
        with scope:
            while True:
                for candidate in peers or self.sources(key):
                    try:
                        peer = await self._peer(candidate)
                        if replica.log is None:
                            await self._fetch(peer, replica)
                        await follow_log(self._new_stream, peer, replica, self._fetch)
                    except Exception as err:  # the writer went away, or lied: try the others
                        log.info(
                            "following a log: peer lost", key=key.hex()[:16], peer=candidate[-16:], error=str(err)[:200]
                        )
                await trio.sleep(FOLLOW_RETRY_S)

    def _require_pubsub(self) -> GatedPubsub:
        if self._pubsub is None:
            raise RuntimeError("the mesh node is not running yet")
        return self._pubsub


def broadcast_due(*, changed: bool, volatile_changed: bool, since_last_s: float, interval_s: float) -> bool:
    """Whether to broadcast our capabilities now.

    Every period; at once when what we offer changed. The connection set and the log's length
    change often (a flapping link, every append): a change of theirs is sent early, but no
    sooner than half a period after the last broadcast, so neither can flood the mesh."""
    return changed or since_last_s >= interval_s or (volatile_changed and since_last_s >= interval_s / 2)


class OwnLogLength:
    """The number of entries in this agent's own log, read again only when its files changed.

    The log worker owns the log; reading its length opens it read-only (cheap), but only after
    a stat shows a new signature was written, not on every broadcast."""

    def __init__(self, log_dir: Path | None) -> None:
        self._path = merkle_dir(log_dir) if log_dir is not None else None
        self._seen: tuple[int, int] | None = None
        self._length = 0

    def __call__(self) -> int:
        if self._path is None:
            return 0
        try:
            stat = (self._path / "signatures").stat()
        except OSError:
            return self._length  # no log yet (0), or a moment between files
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._seen:
            try:
                with MerkleLog.open(self._path) as opened:
                    self._length = opened.length
                self._seen = stamp
            except (OSError, ValueError) as err:  # mid-write or damaged: keep the last length
                log.debug("cannot read the own log's length", error=str(err)[:200])
        return self._length


def concrete_listen_addrs(addrs: list[str]) -> list[str]:
    """The listen addresses with `/ip4/0.0.0.0` replaced by each IPv4 address of this host.

    The host advertises what it listens on (mDNS records, identify), and 0.0.0.0 is
    nobody's address: a peer that found us by mDNS would dial itself. Loopback is left
    out when the host has any other address. Interfaces that appear later are not
    listened on until the worker restarts."""
    import socket

    import psutil  # type: ignore[import-untyped]  # psutil ships no type information

    mine = [a.address for addresses in psutil.net_if_addrs().values() for a in addresses if a.family == socket.AF_INET]
    outside = [ip for ip in mine if not ip.startswith("127.")]
    concrete = outside or mine or ["127.0.0.1"]
    out: list[str] = []
    for addr in addrs:
        if addr.startswith("/ip4/0.0.0.0/"):
            rest = addr[len("/ip4/0.0.0.0") :]
            out.extend(f"/ip4/{ip}{rest}" for ip in concrete)
        else:
            out.append(addr)
    return out
