"""The hub's transport: this agent's mesh worker, over the bus (`bzzz.mesh.client`)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bzzz._core import Envelope
from bzzz.bus import BusError, ServiceError
from bzzz.hmmm.engine import refusal
from bzzz.hmmm.helpdesk import RelayRefused
from bzzz.mesh.client import MeshClient


class MeshTransport:
    def __init__(self, run_dir: Path | str, *, timeout_s: float = 5.0) -> None:
        self._client = MeshClient(run_dir, timeout_s=timeout_s)
        self._lock = threading.Lock()  # one ZeroMQ socket, used from several threads

    def publish(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int) -> Envelope:
        with self._lock:
            return self._client.publish_envelope(type, topic, payload, ttl=ttl)

    def forward(self, data: bytes) -> Envelope:
        try:
            with self._lock:
                return self._client.forward(data)
        except ServiceError as err:
            raise RelayRefused(refusal(err) or "refused", str(err)) from None

    def join(self, topic: str) -> None:
        with self._lock:
            self._client.join(topic)

    def leave(self, topic: str) -> None:
        with self._lock:
            self._client.leave(topic)

    def announce(self, follows: bool, discussions: list[str]) -> None:
        with self._lock:
            self._client.announce(follows, discussions)

    def channel_peers(self, topic: str) -> set[str]:
        with self._lock:
            return set(self._client.channel_peers(topic)["mesh"])

    def followers(self) -> set[str]:
        """Peers expected to follow: live ones whose capability broadcasts say so, and connected
        ones not heard from yet (an agent starting up follows, most likely, within a second)."""
        with self._lock:
            status = self._client.status()
        known = {str(p["peer_id"]): p for p in status["peers"]}
        following = {
            peer_id
            for peer_id, p in known.items()
            if isinstance(hmmm := p.get("capabilities", {}).get("hmmm"), dict) and hmmm.get("follows")
        }
        return following | {str(peer_id) for peer_id in status["connected"] if str(peer_id) not in known}

    def own_capabilities(self) -> frozenset[str]:
        """The models and tools this agent's mesh worker detected (what help requests may need)."""
        with self._lock:
            caps = self._client.status().get("capabilities") or {}
        return frozenset(str(n) for n in [*caps.get("models", []), *caps.get("tools", [])])

    def discussion_ttl(self) -> float | None:
        """The discussion TTL the mesh's gate enforces (`SafeguardSettings`); None if the mesh does not say."""
        try:
            with self._lock:
                guard = self._client.status().get("safeguards") or {}
        except BusError:
            return None
        ttl = guard.get("discussion_ttl_s")
        return float(ttl) if isinstance(ttl, (int, float)) else None

    def close(self) -> None:
        self._client.close()
