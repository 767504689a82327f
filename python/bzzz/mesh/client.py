"""How the other workers of an agent use the mesh: the `mesh` service and the gossip events.

    MeshClient(run_dir).publish("meta_msg", "bzzz/meta/issue/acme/widgets/12", payload)
    MeshClient(run_dir).peers()                     # the live peer table

Admitted gossip comes out on the bus as events: topic `gossip/<gossip topic>`, body the
envelope's canonical bytes (verified already; `bzzz._core.verify_envelope` checks them
again for anyone who wants to). Peer table changes come out on `mesh/peers`
(`PeerEvent`).

Publishing is a request, not an event, so that it is acknowledged: a retried request (the
same `request_id`) is published once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import msgspec

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


MeshRequest = Publish | Join | Leave | Peers | Status | Tasks
request_decoder = msgspec.json.Decoder(MeshRequest)


class PeerEvent(msgspec.Struct, frozen=True):
    kind: Literal["joined", "updated", "left"]
    peer_id: str
    node_id: str


class MeshClient:
    def __init__(self, run_dir: Path | str, *, client: Client | None = None, timeout_s: float = 5.0) -> None:
        self._client = client or Client(run_dir, sender="mesh-client", timeout_s=timeout_s)

    def _call(self, request: MeshRequest, request_id: str | None = None) -> Any:
        body = self._client.request(SERVICE, msgspec.json.encode(request), request_id=request_id)
        return msgspec.json.decode(body)

    def publish(self, type: str, topic: str, payload: dict[str, Any], *, ttl: int = 60, request_id: str | None = None) -> str:
        """Sign and gossip; the envelope's msg_id. ServiceError if the core refuses the payload."""
        reply = self._call(Publish(type, topic, payload, ttl), request_id)
        return str(reply["msg_id"])

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

    def close(self) -> None:
        self._client.close()
