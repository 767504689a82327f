"""The mesh's Prometheus metrics: every message it refuses or loses is counted by why.

Each node has its own registry (a test or a benchmark may run several nodes in one
process); `snapshot()` gives the same figures as plain numbers for `bzzz ctl` and tests.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from bzzz._core import REJECT_REASONS

# Where a message that passed (or was not yet put to) the gate can still be lost.
DROP_PLACES = ("rate_limit", "outbound_queue", "inbound_queue", "bus")
# What a replication answer can fail (bzzz.log.replica.ReplicationRefused.what).
REPLICATION_CHECKS = ("head", "proof", "range", "fork", "truncated", "protocol")


class MeshMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "bzzz_mesh_received", "Messages admitted by the gate, by message type.", ["type"], registry=self.registry
        )
        self.published = Counter(
            "bzzz_mesh_published", "Messages this node signed and published, by type.", ["type"], registry=self.registry
        )
        self.rejected = Counter(
            "bzzz_mesh_rejected",
            "Inbound messages the Rust core's gate refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "bzzz_mesh_dropped",
            "Messages lost after the gate or on the way out, by place.",
            ["where"],
            registry=self.registry,
        )
        self.gossip_duplicates = Counter(
            "bzzz_mesh_gossip_duplicates",
            "Copies the router dropped as already seen (normal in a mesh: each message arrives from several peers).",
            registry=self.registry,
        )
        # Under a supervisor (multiprocess mode) only the mesh worker sets these, for itself:
        # `livesum` is its value while it lives, and nothing once it died (not a stale count).
        self.connected_peers = Gauge(
            "bzzz_mesh_connected_peers", "Open libp2p connections.", registry=self.registry, multiprocess_mode="livesum"
        )
        self.live_agents = Gauge(
            "bzzz_mesh_live_agents",
            "Agents in the peer table heard from recently.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.replication_served = Counter(
            "bzzz_replication_served_entries",
            "Log entries sent to replicating peers, with their proofs.",
            registry=self.registry,
        )
        self.replication_fetched = Counter(
            "bzzz_replication_fetched_entries", "Log entries received from peers and verified.", registry=self.registry
        )
        self.replication_lag = Gauge(
            "bzzz_replication_lag_entries",
            "Entries of a followed log this agent does not hold yet: its writer's advertised length "
            "minus the replica's (the key's first 16 hex digits).",
            ["log_key"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.replication_refused = Counter(
            "bzzz_replication_refused",
            "Replication answers refused, by the check that failed.",
            ["what"],
            registry=self.registry,
        )
        for what in REPLICATION_CHECKS:
            self.replication_refused.labels(what)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for place in DROP_PLACES:
            self.dropped.labels(place)

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every sample as {metric: {label value or "": value}}."""
        out: dict[str, dict[str, float]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                label = next(iter(sample.labels.values()), "")
                out.setdefault(sample.name, {})[label] = sample.value
        return out
