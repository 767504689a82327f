"""Every inbound gossip message: verify + validate + dedup, Rust core vs the PyNaCl-based reference."""

from __future__ import annotations

import time

import pytest

from benches.rates import RATES
from bzzz._core import Gate, KeyPair, Safeguards, sign_envelope
from tests.reference import envelope as ref

GROUP = "envelope: verify + validate + dedup"
SENDERS = [KeyPair.from_seed(bytes([i + 1]) * 32) for i in range(20)]
NOW = int(time.time() * 1000)
COUNT = 1000


def capabilities(i: int) -> bytes:
    """A realistic capabilities broadcast (about 700 bytes on the wire) from one of 20 peers."""
    sender = SENDERS[i % len(SENDERS)]
    payload = {
        "node_id": f"agent-{i % len(SENDERS)}",
        "peer_id": "12D3KooW" + "x" * 44,
        "models": ["gemma3:270m", "qwen2.5-coder:7b"],
        "tools": ["git", "pytest", "ruff"],
        "load_permille": 250,
        "active_tasks": 1,
        "max_tasks": 4,
        "log_key": sender.public_key.hex(),
        "version": "0.1.0",
    }
    return sign_envelope(
        sender.secret_key, "capabilities", "bzzz/capabilities", payload["node_id"], payload, seq=i, ts_ms=NOW
    )


# Distinct messages: a gate admits each once, so every round gets a fresh gate.
MESSAGES = [capabilities(i) for i in range(COUNT)]


def rust_one_by_one() -> int:
    gate = Gate()
    return sum(1 for m in MESSAGES if gate.admit(m, NOW))


def rust_batched() -> int:
    gate = Gate()
    admitted = 0
    for start in range(0, COUNT, 100):
        admitted += sum(1 for r in gate.admit_batch(MESSAGES[start : start + 100], NOW) if not isinstance(r, Exception))
    return admitted


def python_reference() -> int:
    seen = ref.SeenCache(100_000, 60)
    admitted = 0
    for m in MESSAGES:
        envelope = ref.verify_envelope(m, None, NOW)
        admitted += seen.check_and_insert_until(envelope.msg_id, envelope.expires_at_ms / 1000, NOW / 1000)
    return admitted


def test_every_path_admits_every_message_once_before_timing() -> None:
    assert rust_one_by_one() == rust_batched() == python_reference() == COUNT
    gate = Gate()
    gate.admit(MESSAGES[0], NOW)
    with pytest.raises(ValueError, match="already admitted"):
        gate.admit(MESSAGES[0], NOW)


@pytest.mark.benchmark(group=GROUP)
def test_envelope_rust_one_by_one(benchmark) -> None:
    benchmark.pedantic(rust_one_by_one, rounds=5, iterations=1)
    RATES[GROUP]["rust"] = COUNT / benchmark.stats.stats.min


@pytest.mark.benchmark(group=GROUP)
def test_envelope_rust_batches_of_100(benchmark) -> None:
    benchmark.pedantic(rust_batched, rounds=5, iterations=1)
    RATES[GROUP]["rust-batch"] = COUNT / benchmark.stats.stats.min


@pytest.mark.benchmark(group=GROUP)
def test_envelope_python_reference(benchmark) -> None:
    benchmark.pedantic(python_reference, rounds=5, iterations=1)
    RATES[GROUP]["python"] = COUNT / benchmark.stats.stats.min


# --- the discussion safeguards' cost ---------------------------------------------------

SAFEGUARDS_GROUP = "envelope: gate with and without safeguards"
ISSUES = 50
# Loose enough that every message is admitted: the timing covers the whole path (a bucket
# and a discussion updated per message), not cheap early refusals.
LOOSE = Safeguards(sender_burst=COUNT, max_participants=len(SENDERS), max_discussion_messages=COUNT)


def plan(i: int) -> bytes:
    """A meta_msg (about 450 bytes on the wire) from one of 20 peers in one of 50 issues."""
    issue = i % ISSUES + 1
    payload = {
        "issue_id": f"acme/widgets#{issue}",
        "parent_id": None,
        "content": {"query_type": "plan", "text": "split the parser into a lexer and a parser", "parameters": {}},
    }
    return sign_envelope(
        SENDERS[i % len(SENDERS)].secret_key,
        "meta_msg",
        f"bzzz/meta/issue/acme/widgets/{issue}",
        f"agent-{i % len(SENDERS)}",
        payload,
        seq=i,
        ts_ms=NOW,
    )


PLANS = [plan(i) for i in range(COUNT)]


def rust_gate(safeguards: Safeguards | None) -> int:
    gate = Gate(safeguards=safeguards)
    return sum(1 for m in PLANS if gate.admit(m, NOW))


def test_a_gate_with_loose_safeguards_admits_every_plan_before_timing() -> None:
    assert rust_gate(None) == rust_gate(LOOSE) == COUNT


@pytest.mark.benchmark(group=SAFEGUARDS_GROUP)
def test_envelope_rust_without_safeguards(benchmark) -> None:
    benchmark.pedantic(rust_gate, args=(None,), rounds=5, iterations=1)
    RATES[SAFEGUARDS_GROUP]["rust"] = COUNT / benchmark.stats.stats.min


@pytest.mark.benchmark(group=SAFEGUARDS_GROUP)
def test_envelope_rust_with_safeguards(benchmark) -> None:
    benchmark.pedantic(rust_gate, args=(LOOSE,), rounds=5, iterations=1)
    RATES[SAFEGUARDS_GROUP]["rust-safeguards"] = COUNT / benchmark.stats.stats.min
