"""A bare py-libp2p gossip peer for tests: the library's own classes, no Bzzz gate, so it can
send anything (forgeries, garbage, replays) the way a hostile or broken peer would.

It speaks what Bzzz speaks (Noise, yamux, gossipsub with strict signing and the same
content-based message id), runs trio in a thread of its own, and is driven from the test's
thread: `publish`, `connect`, `received`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair as Libp2pKeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from bzzz._core import KeyPair
from bzzz.mesh.gossip import gossip_message_id


class RawPeer:
    def __init__(self, key_pair: KeyPair, topics: list[str], *, plaintext: bool = False) -> None:
        self.key_pair = key_pair
        self.plaintext = plaintext
        self.topics = topics
        self.received: list[tuple[str, bytes, bytes]] = []  # (topic, from peer id, data)
        self.addr = ""
        self._token: trio.lowlevel.TrioToken | None = None
        self._host: Any = None
        self._pubsub: Pubsub | None = None
        self._stop: trio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._thread_main, daemon=True)

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as err:  # reported to the test thread
            self._failure = err
            self._ready.set()

    async def _main(self) -> None:
        private = Ed25519PrivateKey.from_bytes(self.key_pair.seed)
        key_pair = Libp2pKeyPair(private, private.get_public_key())
        security: dict[TProtocol, Any] = (
            {PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)}
            if self.plaintext
            else {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)}
        )
        host = new_host(
            key_pair=key_pair,
            sec_opt=security,
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        )
        router = GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6,
            degree_low=4,
            degree_high=12,
            heartbeat_interval=1,
            adaptive_gossip_enabled=False,
            max_messages_per_topic_per_second=1000.0,
        )
        # A short memory of what it sent, so that it can send the same bytes again (a replay).
        pubsub = Pubsub(
            host, router, strict_signing=True, msg_id_constructor=gossip_message_id, seen_ttl=1, sweep_interval=1
        )
        self._host, self._pubsub = host, pubsub
        self._stop = trio.Event()
        async with (
            host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
            background_trio_service(pubsub),
            background_trio_service(router),
        ):
            await pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                for topic in self.topics:
                    subscription = await pubsub.subscribe(topic)
                    nursery.start_soon(self._drain, topic, subscription)
                self.addr = str(host.get_addrs()[0])
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                await self._stop.wait()
                nursery.cancel_scope.cancel()

    async def _drain(self, topic: str, subscription: Any) -> None:
        while True:
            msg = await subscription.get()
            self.received.append((topic, msg.from_id, msg.data))

    def start(self) -> RawPeer:
        self._thread.start()
        if not self._ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"the raw peer did not start: {self._failure!r}")
        return self

    def _run(self, fn: Any, *args: Any) -> Any:
        assert self._token is not None
        return trio.from_thread.run(fn, *args, trio_token=self._token)

    def connect(self, addr: str) -> None:
        self._run(self._host.connect, info_from_p2p_addr(multiaddr.Multiaddr(addr)))

    def publish(self, topic: str, data: bytes) -> None:
        assert self._pubsub is not None
        self._run(self._pubsub.publish, topic, data)

    def serve(self, protocol: str, handler: Any) -> None:
        """Answer streams of `protocol` with `handler(stream)` (async, run in this peer's trio)."""
        assert self._token is not None
        trio.from_thread.run_sync(self._host.set_stream_handler, TProtocol(protocol), handler, trio_token=self._token)

    def mesh_peers(self, topic: str) -> int:
        router = self._pubsub.router if self._pubsub else None
        return len(getattr(router, "mesh", {}).get(topic, ()))

    def close(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(10)


@contextmanager
def raw_peer(key_pair: KeyPair, topics: list[str], *, plaintext: bool = False) -> Iterator[RawPeer]:
    peer = RawPeer(key_pair, topics, plaintext=plaintext).start()
    try:
        yield peer
    finally:
        peer.close()
