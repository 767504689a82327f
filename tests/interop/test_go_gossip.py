"""A go-libp2p peer (tests/interop/go: Noise, yamux, gossipsub with strict signing and the
same content-based message id) and a Bzzz agent gossip both ways.

The go peer's libp2p identity comes from a seed the test knows, so the test can sign Bzzz
envelopes with the same key: the agent's gate then sees a signer equal to the gossip
source, as it would from a real Bzzz agent written in Go.
"""

from __future__ import annotations

import json
import time

import pytest

from bzzz._core import KeyPair, peer_id, sign_envelope, verify_envelope
from bzzz.bus import Subscriber
from bzzz.mesh.client import MeshClient, gossip_bus_topic
from tests.agents import free_port, mesh_worker, wait_until
from tests.interop.go_peer import GoNotFound, GoPeer, build_go_peer

META_TOPIC = "bzzz/meta/issue/acme/widgets/7"
GO_SEED = bytes(range(32))
GO_KEY = KeyPair.from_seed(GO_SEED)


@pytest.fixture(scope="module")
def go_peer_binary() -> None:
    try:
        build_go_peer()
    except GoNotFound as missing:
        pytest.skip(f"no Go toolchain: {missing}")


def base58(data: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = alphabet[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def test_gossip_flows_both_ways_between_a_go_libp2p_peer_and_a_bzzz_agent(go_peer_binary, start_agent) -> None:
    agent = start_agent({"mesh": mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}")}, name="bzzz")
    agent.wait_running("mesh", timeout=30)
    mesh = MeshClient(agent.run_dir)
    status = wait_until(lambda: mesh.status()["listen"] and mesh.status(), 30, "the agent listening")
    mesh.join(META_TOPIC)
    with (
        GoPeer.start(GO_SEED, topics=["bzzz/capabilities", META_TOPIC], connect=[status["listen"][0]]) as go,
        Subscriber(agent.run_dir, "test") as bus,
    ):
        assert go.peer_id == base58(peer_id(GO_KEY.public_key))
        bus.subscribe(gossip_bus_topic(META_TOPIC))

        # Bzzz -> Go: the agent's capability broadcasts reach the go peer, signed by the agent.
        heard = go.wait_message(lambda m: m.topic == "bzzz/capabilities", timeout=30)
        envelope = verify_envelope(heard.data)
        assert heard.from_id == status["peer_id"] == base58(peer_id(envelope.sender))
        assert envelope.payload["peer_id"] == status["peer_id"]

        # Go -> Bzzz: an envelope signed with the go peer's own key passes the agent's gate.
        payload = {
            "issue_id": "acme/widgets#7",
            "parent_id": None,
            "content": {"query_type": "question", "text": "which parser?", "parameters": {}},
        }

        def delivered() -> object:
            data = sign_envelope(GO_KEY.secret_key, "meta_msg", META_TOPIC, "go-peer", payload, seq=time.time_ns())
            go.publish(META_TOPIC, data)  # again until the topic's mesh has formed
            got = bus.recv(1.0)
            return got and verify_envelope(got[1].body)

        from_go = wait_until(delivered, 30, "the go peer's message on the agent's bus")
        assert from_go.node_id == "go-peer" and from_go.sender == GO_KEY.public_key

        # Bzzz -> Go on an issue topic, published through the agent's mesh service.
        answer = {**payload, "content": {"query_type": "answer", "text": "the new one", "parameters": {}}}

        def answered() -> object:
            msg_id = mesh.publish("meta_msg", META_TOPIC, answer)
            try:
                return go.wait_message(lambda m: m.topic == META_TOPIC and json.loads(m.data)["msg_id"] == msg_id, 1.0)
            except TimeoutError:
                return None

        reply = wait_until(answered, 30, "the agent's answer at the go peer")
        assert verify_envelope(reply.data).payload == answer and reply.from_id == status["peer_id"]
        assert mesh.status()["metrics"]["bzzz_mesh_rejected_total"]["source"] == 0
