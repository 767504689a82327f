"""How the other workers of an agent use the mesh: the `mesh` service and the gossip events.

    MeshClient(run_dir).publish("meta_msg", "bzzz/meta/issue/acme/widgets/12", payload)
    MeshClient(run_dir).peers()                     # the live peer table

Admitted gossip comes out on the bus as events: topic `gossip/<gossip topic>`, body the
envelope's canonical bytes (verified already; `bzzz._core.verify_envelope` checks them
again for anyone who wants to). Peer table changes come out on `mesh/peers`
(`PeerEvent`).

Publishing is a request, not an event, so that it is acknowledged: a retried request (the
same `request_id`) is published once.

This module is the service's wire, defined once: its name, the request structs and the event
topics. The mesh worker answers it in `bzzz.mesh.service`; importing this side loads no libp2p.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from bzzz._core import Envelope, verify_envelope
from bzzz.bus import Client

SERVICE = "mesh"
GOSSIP_PREFIX = "gossip/"
PEERS_TOPIC = "mesh/peers"


def gossip_bus_topic(topic: str) -> str:
    """The bus topic on which a gossip topic's admitted messages appear."""
    return GOSSIP_PREFIX + topic


class Publish(msgspec.Struct, tag="publish", tag_field="op", frozen=True):
    type: str
    topic: str
    payload: dict[str, Any]
    ttl: int = 60


class Join(msgspec.Struct, tag="join", tag_field="op", frozen=True):
    topic: str


class Leave(msgspec.Struct, tag="leave", tag_field="op", frozen=True):
    topic: str


class Peers(msgspec.Struct, tag="peers", tag_field="op", frozen=True):
    pass


class Status(msgspec.Struct, tag="status", tag_field="op", frozen=True):
    pass


class Tasks(msgspec.Struct, tag="tasks", tag_field="op", frozen=True):
    active: int
    max: int | None = None


class Forward(msgspec.Struct, tag="forward", tag_field="op", frozen=True):
    """Relay an admitted envelope as this agent, one hop further (refused past the hop limit)."""

    envelope: str


class ChannelPeers(msgspec.Struct, tag="channel_peers", tag_field="op", frozen=True):
    topic: str


class Announce(msgspec.Struct, tag="announce", tag_field="op", frozen=True):
    """What this agent's capability broadcasts say about discussions (`hmmm`)."""

    follows: bool
    discussions: list[str]


class Replicate(msgspec.Struct, tag="replicate", tag_field="op", frozen=True):
    """Bring this agent's copy of log `key` (hex) up to date, verified; keep following it if asked."""

    key: str
    peers: list[str] = []
    follow: bool = False


class ReplicationJob(msgspec.Struct, tag="replication_job", tag_field="op", frozen=True):
    key: str


MeshRequest = (
    Publish | Join | Leave | Peers | Status | Tasks | Forward | ChannelPeers | Announce | Replicate | ReplicationJob
)
request_decoder = msgspec.json.Decoder(MeshRequest)


class PeerEvent(msgspec.Struct, frozen=True):
    kind: Literal["joined", "updated", "left"]
    peer_id: str
    node_id: str


class MeshClient:
    def __init__(self, run_dir: Path | str, *, client: Client | None = None, timeout_s: float = 5.0) -> None:
        self._client = client or Client(run_dir, sender="mesh-client", timeout_s=timeout_s)
        self._run_dir = run_dir

    def _call(self, request: MeshRequest, request_id: str | None = None) -> Any:
        body = self._client.request(SERVICE, msgspec.json.encode(request), request_id=request_id)
        return msgspec.json.decode(body)

    def publish(
        self, type: str, topic: str, payload: dict[str, Any], *, ttl: int = 60, request_id: str | None = None
    ) -> str:
        """Sign and gossip; the envelope's msg_id. ServiceError if the core refuses the payload."""
        return self.publish_envelope(type, topic, payload, ttl=ttl, request_id=request_id).msg_id

    def publish_envelope(
        self, type: str, topic: str, payload: dict[str, Any], *, ttl: int = 60, request_id: str | None = None
    ) -> Envelope:
        """Sign and gossip; the envelope as sent. ServiceError if the core (or the mesh's safeguards:
        rate, closed discussion, participants) refuses it."""
        reply = self._call(Publish(type, topic, payload, ttl), request_id)
        return verify_envelope(str(reply["envelope"]).encode())

    def forward(self, data: bytes) -> Envelope:
        """Relay an envelope this agent admitted, re-signed with hop_count + 1; the relayed copy.
        ServiceError (saying `hops`) past the hop limit."""
        reply = self._call(Forward(data.decode()))
        return verify_envelope(str(reply["envelope"]).encode())

    def channel_peers(self, topic: str) -> dict[str, list[str]]:
        """Peers known to be subscribed to `topic`, and those in this node's gossip mesh for it."""
        reply = self._call(ChannelPeers(topic))
        return {"subscribed": list(reply["subscribed"]), "mesh": list(reply["mesh"])}

    def announce(self, follows: bool, discussions: list[str]) -> None:
        self._call(Announce(follows, discussions))

    def join(self, topic: str) -> None:
        self._call(Join(topic))

    def leave(self, topic: str) -> None:
        self._call(Leave(topic))

    def peers(self) -> list[dict[str, Any]]:
        return list(self._call(Peers())["peers"])

    def status(self) -> dict[str, Any]:
        return dict(self._call(Status()))

    def set_tasks(self, active: int, maximum: int | None = None) -> None:
        self._call(Tasks(active, maximum))

    def replicate(
        self, key: str, peers: list[str] | None = None, *, follow: bool = False, timeout_s: float = 600.0
    ) -> dict[str, Any]:
        """{"state": "done", "key", "length", "peer", "problems", "following"} once the copy is up
        to date, or {"state": "failed", "error"}; {"state": "running"} if `timeout_s` passed first.
        The mesh worker does the transfer in the background: this asks how it is going."""
        job = dict(self._call(Replicate(key, peers or [], follow)))
        deadline = time.monotonic() + timeout_s
        while job["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            job = dict(self._call(ReplicationJob(key)))
        return job

    def close(self) -> None:
        self._client.close()
