"""The peer table: which agents are alive and what they can do, from their capability broadcasts.

An agent is *live* while its last broadcast is younger than `MISSED_INTERVALS` of its own
broadcast period (which it states in its payload as `interval_ms`; ours is assumed when it
does not). Liveness comes only from signed broadcasts, never from a libp2p connection: a
peer can be connected and hung, or alive behind another peer with no direct connection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bzzz._core import Envelope

MISSED_INTERVALS = 3


@dataclass
class PeerEntry:
    peer_id: str
    node_id: str
    capabilities: dict[str, Any]
    interval_s: float
    last_seen: float  # monotonic
    last_seq: int

    def live(self, now: float) -> bool:
        return now - self.last_seen <= MISSED_INTERVALS * self.interval_s

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "peer_id": self.peer_id,
            "node_id": self.node_id,
            "age_s": round(now - self.last_seen, 3),
            "interval_s": self.interval_s,
            "capabilities": self.capabilities,
        }


@dataclass(frozen=True)
class Change:
    kind: str  # "joined" | "updated" | "left"
    peer_id: str
    node_id: str


class PeerTable:
    def __init__(self, default_interval_s: float, clock: Any = time.monotonic) -> None:
        self.default_interval_s = default_interval_s
        self._clock = clock
        self._peers: dict[str, PeerEntry] = {}

    def observe(self, envelope: Envelope) -> Change | None:
        """Take in an admitted `capabilities` envelope; the change it makes, if any.

        A broadcast older than the one already held (lower `seq`, e.g. a copy delayed in
        the mesh) refreshes nothing."""
        payload = envelope.payload
        peer_id = str(payload["peer_id"])
        now = self._clock()
        interval_ms = payload.get("interval_ms")
        interval_s = interval_ms / 1000 if isinstance(interval_ms, int) and interval_ms > 0 else self.default_interval_s
        entry = self._peers.get(peer_id)
        if entry is not None and envelope.seq <= entry.last_seq:
            return None
        was_live = entry is not None and entry.live(now)
        changed = entry is None or _without_volatile(entry.capabilities) != _without_volatile(payload)
        self._peers[peer_id] = PeerEntry(
            peer_id=peer_id,
            node_id=envelope.node_id,
            capabilities=payload,
            interval_s=interval_s,
            last_seen=now,
            last_seq=envelope.seq,
        )
        if not was_live:
            return Change("joined", peer_id, envelope.node_id)
        if changed:
            return Change("updated", peer_id, envelope.node_id)
        return None

    def expire(self) -> list[Change]:
        """Forget agents silent for `MISSED_INTERVALS` of their periods; who left."""
        now = self._clock()
        gone = [entry for entry in self._peers.values() if not entry.live(now)]
        for entry in gone:
            del self._peers[entry.peer_id]
        return [Change("left", entry.peer_id, entry.node_id) for entry in gone]

    def live(self) -> list[PeerEntry]:
        now = self._clock()
        return sorted((e for e in self._peers.values() if e.live(now)), key=lambda e: e.node_id)

    def snapshot(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [entry.to_dict(now) for entry in self.live()]

    def __len__(self) -> int:
        return len(self.live())


# Changes of these are news for a monitor, not for the other workers (no `updated` event for them).
_VOLATILE = ("load_permille", "memory_available_bytes", "connected", "log_length")


def _without_volatile(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in _VOLATILE}
