"""Finding peers and staying connected to them: mDNS, bootstrap addresses, the DHT rendezvous.

Every source only *proposes* peers to one `Dialer`; the dialer alone connects, so there is
one place that decides when to try again. A peer that cannot be reached is retried with
exponential backoff (`redial_initial_s` doubling up to `redial_max_s`); a peer that was
connected and is no longer (a partition, a restart) is redialled the same way, so a
healed network rejoins without anyone's help. Bootstrap peers are wanted forever; peers
found by mDNS or the DHT are given up after `GIVE_UP_AFTER` failures in a row (the
source proposes them again while they are still announced).
"""

from __future__ import annotations

import hashlib
import queue
import time
from dataclasses import dataclass

import multiaddr
import structlog
import trio
from libp2p.abc import IHost
from libp2p.kad_dht.kad_dht import KadDHT
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr

from bzzz.mesh.metrics import MeshMetrics

log = structlog.get_logger("bzzz.mesh")

GIVE_UP_AFTER = 8
DIAL_TIMEOUT_S = 10.0


@dataclass
class _Wanted:
    info: PeerInfo
    source: str
    permanent: bool
    failures: int = 0
    next_try: float = 0.0
    connected: bool = False
    dialing: bool = False


class Dialer:
    def __init__(self, host: IHost, metrics: MeshMetrics, *, initial_s: float, max_s: float) -> None:
        self.host = host
        self.metrics = metrics
        self.initial_s = initial_s
        self.max_s = max_s
        self._wanted: dict[ID, _Wanted] = {}
        # mDNS reports peers from zeroconf's own thread.
        self._from_threads: queue.SimpleQueue[tuple[PeerInfo, str]] = queue.SimpleQueue()
        self._wake = trio.Event()

    def want(self, info: PeerInfo, source: str, *, permanent: bool = False) -> None:
        if info.peer_id == self.host.get_id():
            return
        entry = self._wanted.get(info.peer_id)
        if entry is None:
            self._wanted[info.peer_id] = _Wanted(info, source, permanent)
            log.debug("peer proposed", peer=str(info.peer_id), source=source)
            self._wake.set()
            return
        entry.permanent = entry.permanent or permanent
        if info.addrs:
            entry.info = info
        if entry.failures >= GIVE_UP_AFTER:  # proposed again: it is still out there
            entry.failures = GIVE_UP_AFTER - 1

    def want_from_thread(self, info: PeerInfo, source: str) -> None:
        self._from_threads.put((info, source))

    def want_addr(self, addr: str, source: str, *, permanent: bool = False) -> None:
        self.want(info_from_p2p_addr(multiaddr.Multiaddr(addr)), source, permanent=permanent)

    def connected_peers(self) -> list[ID]:
        return list(self.host.get_connected_peers())

    async def run(self, tick_s: float = 0.25) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                while not self._from_threads.empty():
                    info, source = self._from_threads.get_nowait()
                    self.want(info, source)
                connected = set(self.host.get_connected_peers())
                self.metrics.connected_peers.set(len(connected))
                now = time.monotonic()
                for peer_id, entry in list(self._wanted.items()):
                    if peer_id in connected:
                        if not entry.connected:
                            entry.connected, entry.failures = True, 0
                        continue
                    if entry.connected:  # it was, and is not any more
                        entry.connected = False
                        entry.next_try = now
                        log.info("peer disconnected, redialling", peer=str(peer_id))
                    if entry.dialing or now < entry.next_try:
                        continue
                    if entry.failures >= GIVE_UP_AFTER and not entry.permanent:
                        del self._wanted[peer_id]
                        continue
                    entry.dialing = True
                    nursery.start_soon(self._dial, entry)
                self._wake = trio.Event()
                with trio.move_on_after(tick_s):
                    await self._wake.wait()

    async def _dial(self, entry: _Wanted) -> None:
        peer = entry.info.peer_id
        # The swarm keeps a negative cache of peers that failed recently and refuses to dial
        # them at all for a while; the backoff here is the one that decides.
        network = self.host.get_network()
        if hasattr(network, "unblock_peer"):
            network.unblock_peer(peer)
        try:
            with trio.fail_after(DIAL_TIMEOUT_S):
                await self.host.connect(entry.info)
        except Exception as err:  # any failure to reach a peer is retried, never fatal
            entry.failures += 1
            delay = min(self.max_s, self.initial_s * 2 ** (entry.failures - 1))
            entry.next_try = time.monotonic() + delay
            log.debug(
                "dial failed",
                peer=str(peer),
                source=entry.source,
                failures=entry.failures,
                retry_in_s=delay,
                error=repr(err),
            )
        else:
            entry.connected, entry.failures = True, 0
            log.info("connected", peer=str(peer), source=entry.source)
        finally:
            entry.dialing = False


def rendezvous_key(name: str) -> str:
    """The DHT key of a rendezvous name: a sha2-256 multihash, hex (what KadDHT takes)."""
    return "1220" + hashlib.sha256(name.encode()).hexdigest()


async def rendezvous(dht: KadDHT, dialer: Dialer, name: str, interval_s: float) -> None:
    """Announce this node under the rendezvous key and dial the others found there.

    Needs one connection to begin with (a bootstrap peer, or one found by mDNS): through it
    the DHT reaches the peers that announced themselves, whichever network they are on."""
    key = rendezvous_key(name)
    me = dialer.host.get_id()
    while True:
        for peer in dialer.connected_peers():
            try:
                await dht.add_peer(peer)
            except Exception as err:
                log.debug("dht add_peer failed", peer=str(peer), error=repr(err))
        if dht.get_routing_table_size() > 0:
            try:
                with trio.move_on_after(interval_s):
                    await dht.provide(key)
                with trio.move_on_after(interval_s):
                    for info in await dht.find_providers(key, 100):
                        if info.peer_id == me:
                            continue
                        if not info.addrs:
                            info = PeerInfo(info.peer_id, dialer.host.get_peerstore().addrs(info.peer_id))
                        if info.addrs:
                            dialer.want(info, "dht")
            except Exception as err:
                log.debug("dht rendezvous round failed", error=repr(err))
        await trio.sleep(interval_s)
