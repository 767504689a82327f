"""The mesh worker's settings (`[workers.mesh.settings]`), with the reasons for every gossip default.

    [workers.mesh.settings]
    listen = ["/ip4/0.0.0.0/tcp/4001"]
    capabilities_interval_s = 10
    metrics_port = 9464
    discovery = { bootstrap = ["/ip4/10.0.0.5/tcp/4001/p2p/12D3KooW..."], mdns = true, dht = true }
    capabilities = { ollama_endpoints = ["http://127.0.0.1:11434"], tools = ["git", "make"], max_tasks = 2 }
    gossip = { heartbeat_s = 1.0, safeguards = { max_participants = 16 } }

Unknown keys are refused, so a misspelt setting stops the agent instead of being ignored.

py-libp2p 0.8.1's defaults suit a demo, not a cluster (docs/notes/py-libp2p-0.8.1.md has
the measurements behind each choice):

* `heartbeat_s` 1 s, not 120 s: the heartbeat grafts and prunes the mesh and gossips
  IHAVE; at 120 s a new peer waits two minutes to join the mesh of a topic.
* `max_publish_rate` 200 msg/s per sender and topic, not 10: past the limit the router
  forwards nothing, *including this node's own publishes*, with only a warning. 10/s is
  less than one busy issue discussion. The limit stays on as protection against a
  flooding peer; every drop is counted (`bzzz_mesh_dropped_total{where="rate_limit"}`).
* `outbound_queue` 1024 RPCs per peer, not 32: a burst (a capability round after a heal,
  a discussion) overflows 32 at once, and a full queue drops silently. Counted as
  `where="outbound_queue"`.
* `inbound_queue` 4096 messages between the router and the bus, instead of one 32-slot
  channel per topic that drops with a warning. Counted as `where="inbound_queue"`.
* `safeguards` (the core's, per discussion and per sender; `SafeguardSettings`): 5 HMMM
  messages/s per sender with bursts of 20, 16 participants and 500 messages per discussion,
  and a discussion closes an hour after it opened. Capability broadcasts are not limited by
  them (the router's limit above applies).
* `seen_ttl_s` 120 s (the default): how long the router remembers a message id. A copy
  arriving later is checked again by the gate, whose dedup lasts as long as the message is
  valid (its ttl), so a replay is refused either way.
"""

from __future__ import annotations

import multiaddr
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bzzz._core import Safeguards
from bzzz.capabilities import CapabilityConfig

DEFAULT_PORT = 4001
RENDEZVOUS = "bzzz/rendezvous/v1"


class SafeguardSettings(BaseModel):
    """The discussion safeguards every message passes in the core's gate (`bzzz._core.Safeguards`),
    on arrival and on sending. Runaway conversations end here, whatever the workers do."""

    model_config = ConfigDict(extra="forbid")

    sender_rate: float = Field(default=5.0, gt=0, description="HMMM messages per second per sender, sustained.")
    sender_burst: int = Field(default=20, ge=1, description="HMMM messages a sender may send at once.")
    max_participants: int = Field(default=16, ge=1, description="Distinct senders in one discussion.")
    discussion_ttl_s: int = Field(
        default=3600, ge=1, description="Seconds a discussion stays open after its first message."
    )
    max_discussion_messages: int = Field(default=500, ge=1, description="Messages one discussion may hold.")
    capacity: int = Field(default=10_000, ge=1, description="Senders and discussions remembered (memory bound).")

    def core(self) -> Safeguards:
        return Safeguards(
            sender_rate=self.sender_rate,
            sender_burst=self.sender_burst,
            max_participants=self.max_participants,
            discussion_ttl=self.discussion_ttl_s,
            max_discussion_messages=self.max_discussion_messages,
            capacity=self.capacity,
        )


class GossipSettings(BaseModel):
    """The gossipsub router and the gate in front of it."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_s: float = Field(default=1.0, gt=0, description="How often the router grafts, prunes and gossips IHAVE.")
    degree: int = Field(default=6, ge=1, description="D: peers in each topic's mesh.")
    degree_low: int = Field(default=4, ge=1, description="D_low: below this many, the router grafts more peers.")
    degree_high: int = Field(default=12, ge=1, description="D_high: above this many, the router prunes peers.")
    max_publish_rate: float = Field(default=200.0, gt=0, description="Messages per second per sender and topic.")
    outbound_queue: int = Field(default=1024, ge=1, description="RPCs queued for each peer before drops.")
    inbound_queue: int = Field(default=4096, ge=1, description="Admitted messages queued for the bus before drops.")
    seen_ttl_s: int = Field(default=120, ge=1, description="How long the router remembers a message id.")
    max_message_bytes: int = Field(default=65536, ge=1024, description="Envelope size limit (the gate's max_size).")
    max_hops: int = Field(default=3, ge=0, le=255, description="Relays an envelope may have had (the gate's max_hops).")
    max_ttl_s: int = Field(
        default=3600, ge=1, description="Longest validity an envelope may claim (the gate's max_ttl)."
    )
    safeguards: SafeguardSettings = Field(
        default_factory=SafeguardSettings, description="The discussion safeguards of the core's gate."
    )


class DiscoverySettings(BaseModel):
    """How this agent finds its peers: mDNS, bootstrap addresses, the DHT rendezvous."""

    model_config = ConfigDict(extra="forbid")

    mdns: bool = Field(default=True, description="Find and connect to peers on the local network.")
    bootstrap: list[str] = Field(
        default_factory=list, description="Multiaddrs with /p2p/<peer id>, dialled until connected."
    )
    dht: bool = Field(default=True, description="Announce and look up the rendezvous key in the Kademlia DHT.")
    rendezvous: str = Field(
        default=RENDEZVOUS, min_length=1, description="The DHT key all agents of one cluster share."
    )
    dht_interval_s: float = Field(
        default=10.0, gt=0, description="How often to announce and look up the rendezvous key."
    )
    redial_initial_s: float = Field(default=1.0, gt=0, description="First wait before redialling a lost peer.")
    redial_max_s: float = Field(default=60.0, gt=0, description="Longest wait between redials (the backoff's cap).")

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_names_a_peer(cls, addrs: list[str]) -> list[str]:
        for addr in addrs:
            try:
                parsed = multiaddr.Multiaddr(addr)
                parsed.value_for_protocol("p2p")
            except Exception as err:
                raise ValueError(
                    f"bootstrap address {addr!r} must be a multiaddr ending in /p2p/<peer id>: {err}"
                ) from None
        return addrs


class MeshSettings(BaseModel):
    """`[workers.mesh.settings]`: this agent's libp2p host, its discovery, gossip and capability broadcasts."""

    model_config = ConfigDict(extra="forbid")

    listen: list[str] = Field(
        default_factory=lambda: [f"/ip4/0.0.0.0/tcp/{DEFAULT_PORT}"],
        description="Multiaddrs to listen on; 0.0.0.0 is expanded to each address.",
    )
    gossip: GossipSettings = Field(default_factory=GossipSettings, description="The gossip router and the gate.")
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings, description="How peers are found.")
    capabilities: CapabilityConfig = Field(
        default_factory=CapabilityConfig, description="What this agent advertises: Ollama models, tools, max tasks."
    )
    capabilities_interval_s: float = Field(
        default=10.0, gt=0, description="Broadcast period; a peer silent 3 periods is gone."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve this worker's own Prometheus metrics on this port (0: any free port). Prefer the agent's "
        "[metrics] listen: one /metrics for every worker.",
    )

    @field_validator("listen")
    @classmethod
    def _listen_addrs_parse(cls, addrs: list[str]) -> list[str]:
        if not addrs:
            raise ValueError("at least one listen address is needed")
        for addr in addrs:
            try:
                multiaddr.Multiaddr(addr)
            except Exception as err:
                raise ValueError(f"listen address {addr!r} is not a multiaddr: {err}") from None
        return addrs
