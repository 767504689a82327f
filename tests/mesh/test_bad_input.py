"""A hostile peer cannot get anything past the gate: every bad message is dropped and counted
by reason, nothing reaches the agent's bus, and the agent keeps running and listening."""

from __future__ import annotations

import time
import traceback
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from libp2p.network.exceptions import SwarmDialAllFailedError
from libp2p.peer.id import ID

from bzzz._core import KeyPair, peer_id, sign_envelope, verify_envelope
from bzzz.bus import Subscriber
from bzzz.mesh.client import MeshClient, gossip_bus_topic
from tests.agents import Agent, free_port, mesh_worker, wait_until
from tests.mesh.rawpeer import raw_peer

TOPIC = "bzzz/meta/escalation"
ATTACKER = KeyPair.from_seed(bytes([0xA7]) * 32)
VICTIM = KeyPair.from_seed(bytes([0x51]) * 32)


def escalation(key: KeyPair = ATTACKER, **fields: Any) -> bytes:
    payload = {"issue_id": "acme/widgets#12", "reason": "stuck", "summary": "help", "messages": []}
    return sign_envelope(key.secret_key, "escalation", TOPIC, "mallory", payload, seq=fields.pop("seq", 1), **fields)


def rejected(agent: Agent) -> dict[str, float]:
    return dict(MeshClient(agent.run_dir).status()["metrics"]["bzzz_mesh_rejected_total"])


def start_target(start_agent: Callable[..., Agent], **settings: Any) -> tuple[Agent, str]:
    # A one-second router memory, so that a replay a few seconds later reaches the gate.
    agent = start_agent(
        {
            "mesh": mesh_worker(
                f"/ip4/127.0.0.1/tcp/{free_port()}",
                capabilities={"ollama_endpoints": [], "tools": ["sh"]},
                gossip={"seen_ttl_s": 1},
                **settings,
            )
        },
        name="target",
    )
    agent.wait_running("mesh", timeout=30)
    addr = wait_until(lambda: MeshClient(agent.run_dir).status()["listen"], 30, "the agent listening")[0]
    return agent, addr


def test_forged_misattributed_malformed_oversize_replayed_and_expired_messages_are_dropped_and_counted(
    start_agent,
) -> None:
    metrics_port = free_port()
    agent, addr = start_target(start_agent, metrics_port=metrics_port)
    pid = agent.worker("mesh")["pid"]
    now = int(time.time() * 1000)
    genuine = escalation(seq=2)
    forged = escalation(seq=3).replace(b'"summary":"help"', b'"summary":"rm -rf"')
    bad = {
        "signature": forged,
        "source": escalation(VICTIM, seq=4),  # a valid envelope of someone else's, sent as ours
        "malformed": b'{"v":1,"type":',
        "size": escalation(seq=5).replace(b"{", b"{" + b" " * 70_000, 1),
        "ttl": escalation(seq=6, ts_ms=now - 120_000, ttl=60),
        "skew": escalation(seq=7, ts_ms=now + 3_600_000),
        "hops": escalation(seq=8, hop_count=5),
    }
    with raw_peer(ATTACKER, [TOPIC, "bzzz/capabilities"]) as attacker, Subscriber(agent.run_dir, "test") as bus:
        bus.subscribe(gossip_bus_topic(TOPIC))
        attacker.connect(addr)
        # Heard from the agent: the connection and its gossip work both ways.
        wait_until(lambda: any(t == "bzzz/capabilities" for t, _, _ in attacker.received), 30, "the agent's broadcast")
        wait_until(lambda: attacker.mesh_peers(TOPIC) > 0, 30, "the attacker in the agent's mesh")
        for data in bad.values():
            attacker.publish(TOPIC, data)
        attacker.publish(TOPIC, genuine)
        delivered = wait_until(lambda: bus.recv(1.0), 30, "the genuine message on the bus")
        assert verify_envelope(delivered[1].body).to_bytes() == genuine
        counts = wait_until(lambda: (c := rejected(agent)) and all(c[r] >= 1 for r in bad) and c, 30, "every refusal")
        assert {reason: counts[reason] for reason in bad} == {reason: 1.0 for reason in bad}

        time.sleep(3)  # both routers forget the genuine message; only the gate remembers it
        attacker.publish(TOPIC, genuine)
        wait_until(lambda: rejected(agent)["duplicate"] == 1.0, 30, "the replay refused as a duplicate")
        assert bus.recv(1.0) is None  # nothing but the genuine message ever reached the bus

    assert agent.worker("mesh")["pid"] == pid and agent.worker("mesh")["state"] == "running"
    status = MeshClient(agent.run_dir).status()
    assert status["metrics"]["bzzz_mesh_received_total"]["escalation"] == 1.0

    # The same counts, as Prometheus scrapes them.
    scraped = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    assert 'bzzz_mesh_rejected_total{reason="source"} 1.0' in scraped
    assert 'bzzz_mesh_dropped_total{where="outbound_queue"} 0.0' in scraped


def test_a_peer_that_offers_only_plaintext_is_refused(start_agent) -> None:
    agent, addr = start_target(start_agent)
    with raw_peer(ATTACKER, [TOPIC], plaintext=True) as plain:
        with pytest.raises(SwarmDialAllFailedError) as refused:
            plain.connect(addr)
    assert "failed to negotiate the secure protocol" in "".join(traceback.format_exception(refused.value))
    with raw_peer(ATTACKER, [TOPIC]) as noise:  # the same key over Noise is welcome
        noise.connect(addr)
        attacker_id = ID(peer_id(ATTACKER.public_key)).to_base58()
        wait_until(
            lambda: attacker_id in MeshClient(agent.run_dir).status()["connected"], 10, "the Noise peer connected"
        )
    assert agent.worker("mesh")["state"] == "running"
