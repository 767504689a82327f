"""What a hostile peer sends into a discussion never reaches the hmmm worker: forged and
replayed plans are refused by the gate, and a flood is cut to the sender's rate."""

from __future__ import annotations

import json
import time

from bzzz._core import KeyPair, sign_envelope
from bzzz.hmmm.messages import issue_channel, meta_payload
from bzzz.mesh.client import MeshClient
from tests.agents import free_port, wait_until
from tests.executor.fake_ollama import fake_ollama
from tests.hmmm.cluster import messages, pause, workers
from tests.mesh.rawpeer import raw_peer

MALLORY = KeyPair.from_seed(bytes([0x3A]) * 32)
CHANNEL = issue_channel("acme/widgets", 7)
BURST, RATE = 20, 5.0


def plan(text: str, seq: int) -> bytes:
    payload = meta_payload("acme/widgets#7", "plan", text, parameters={"repo": "acme/widgets", "number": 7})
    return sign_envelope(MALLORY.secret_key, "meta_msg", CHANNEL, "mallory", payload, seq=seq)


def rejected(run_dir) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return dict(MeshClient(run_dir).status()["metrics"]["bzzz_mesh_rejected_total"])


def test_forged_replayed_and_flooded_meta_messages_are_refused_before_the_hmmm_worker(start_agent) -> None:
    with fake_ollama(["gemma3:270m"], ["ACK"]) as model:
        # A one-second router memory, so that a replay seconds later reaches the gate.
        agent = start_agent(
            workers(port=free_port(), ollama=model.url, gossip={"seen_ttl_s": 1}), name="b", node_id="b"
        )
        agent.wait_running("hmmm", timeout=30)
        addr = wait_until(lambda: MeshClient(agent.run_dir).status()["listen"], 30, "listening")[0]
        MeshClient(agent.run_dir).join(CHANNEL)  # b follows the issue (as it would on an announcement)
        with raw_peer(MALLORY, [CHANNEL]) as mallory:
            mallory.connect(addr)
            wait_until(lambda: mallory.mesh_peers(CHANNEL) > 0, 30, "mallory in b's mesh for the channel")
            genuine = plan("a genuine plan", seq=1)
            forged = plan("a plan", seq=2).replace(b"a plan", b"rm -rf the repository")
            mallory.publish(CHANNEL, forged)
            mallory.publish(CHANNEL, genuine)
            wait_until(lambda: messages(agent, "received", topic=CHANNEL), 30, "the genuine plan journalled")
            pause(3)  # both routers forget it; only the gate remembers
            mallory.publish(CHANNEL, genuine)
            wait_until(lambda: rejected(agent.run_dir)["duplicate"] >= 1, 30, "the replay refused")

            # A flood: 100 plans at 100 a second (under the router's own per-topic limit).
            started = time.monotonic()
            for n in range(100):
                mallory.publish(CHANNEL, plan(f"flood {n}", seq=10 + n))
                time.sleep(0.01)
            wait_until(
                lambda: rejected(agent.run_dir)["rate"] + len(messages(agent, "received", topic=CHANNEL)) >= 101,
                30,
                "every flooded message admitted or refused",
            )
            # The gate refills as it admits, and a loaded router admits later than mallory sends:
            # the whole span up to the last verdict bounds the refill.
            elapsed = time.monotonic() - started

        counts = rejected(agent.run_dir)
        received = messages(agent, "received", topic=CHANNEL)
        texts = [m["text"] for m in received]
        assert counts["signature"] == 1 and "rm -rf the repository" not in json.dumps(texts)
        assert texts.count("a genuine plan") == 1 and counts["duplicate"] == 1
        # The sender's bucket: the burst (one token went on the genuine plan), then RATE per second.
        flooded = len(received) - 1
        assert BURST - 1 <= flooded <= BURST + RATE * (elapsed + 1) + 1
        assert counts["rate"] == 100 - flooded
        # Only what was admitted was reviewed by b's model, once per plan.
        wait_until(
            lambda: len([r for r in model.requests if "TASK: review" in str(r)]) >= len(received), 60, "b's reviews"
        )
        pause(1)
        assert len([r for r in model.requests if "TASK: review" in str(r)]) == len(received)
