"""Discussion safeguards, as a specification: what a `Gate` with `Safeguards` admits
(checks 11 to 13 of the module doc of rust/core/src/envelope/mod.rs). The pure-Python
reference does not implement them, so these run against the core alone, every call at
an explicit `now_ms`."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bzzz._core import (
    REJECT_REASONS,
    CoreError,
    Envelope,
    EnvelopeRejected,
    Gate,
    KeyPair,
    Limits,
    Safeguards,
    peer_id,
    sign_envelope,
    verify_envelope,
)
from tests.gil import ticks_of_another_thread_during

NOW = 1_750_000_000_000
ISSUE = "bzzz/meta/issue/anthonyrawlins/bzzz/12"
REQUEST = "0123456789abcdef0123456789abcdef"
OTHER_REQUEST = "fedcba9876543210fedcba9876543210"

ALICE = KeyPair.from_seed(bytes([7]) * 32)
BOB = KeyPair.from_seed(bytes([9]) * 32)
CAROL = KeyPair.from_seed(bytes([11]) * 32)


def sign(key: KeyPair, type_: str, topic: str, payload: dict[str, Any], ts_ms: int = NOW) -> bytes:
    """A new message (a fresh random msg_id) valid for a minute from `ts_ms`."""
    return sign_envelope(key.secret_key, type_, topic, "walnut", payload, seq=1, ts_ms=ts_ms, ttl=60)


def meta(key: KeyPair, topic: str = ISSUE, ts_ms: int = NOW) -> bytes:
    content = {"query_type": "plan", "text": "fix the parser", "parameters": {}}
    return sign(
        key, "meta_msg", topic, {"issue_id": "anthonyrawlins/bzzz#12", "parent_id": None, "content": content}, ts_ms
    )


def help_request(key: KeyPair, request_id: str = REQUEST) -> bytes:
    payload = {"request_id": request_id, "task_id": "o/r#12", "problem": "tests fail", "tried": [], "needs": ["rust"]}
    return sign(key, "task_help_request", "bzzz/tasks/help", payload)


def help_response(key: KeyPair, request_id: str = REQUEST) -> bytes:
    payload = {"request_id": request_id, "task_id": "o/r#12", "can_help": True, "text": "try this"}
    return sign(key, "task_help_response", "bzzz/tasks/help", payload)


def escalation(key: KeyPair) -> bytes:
    payload = {"issue_id": "o/r#12", "reason": "stuck", "summary": "3 help rounds failed", "messages": []}
    return sign(key, "escalation", "bzzz/meta/escalation", payload)


def capabilities(key: KeyPair) -> bytes:
    payload = {
        "node_id": "walnut",
        "peer_id": "12D3KooWabc",
        "models": [],
        "tools": [],
        "load_permille": 0,
        "active_tasks": 0,
        "max_tasks": 1,
        "log_key": key.public_key.hex(),
        "version": "0.1.0",
    }
    return sign(key, "capabilities", "bzzz/capabilities", payload)


def outcome(gate: Gate, data: bytes, now_ms: int = NOW) -> str:
    """ "admitted", or the reason it was refused."""
    try:
        gate.admit(data, now_ms)
    except EnvelopeRejected as e:
        return e.reason
    return "admitted"


def outcomes(gate: Gate, items: list[bytes], now_ms: int = NOW) -> list[str]:
    return [outcome(gate, data, now_ms) for data in items]


def guarded(**safeguards: Any) -> Gate:
    return Gate(safeguards=Safeguards(**safeguards))


def state(gate: Gate, key: str, now_ms: int = NOW) -> dict[str, Any]:
    found = gate.discussion(key, now_ms)
    assert found is not None, f"the gate does not remember {key}"
    return found


# --- the settings -----------------------------------------------------------------------


def test_safeguards_have_readable_defaults_and_are_frozen() -> None:
    s = Safeguards()
    assert (
        s.sender_rate,
        s.sender_burst,
        s.max_participants,
        s.discussion_ttl,
        s.max_discussion_messages,
        s.capacity,
    ) == (5.0, 20, 16, 3600, 500, 10000)
    assert s == Safeguards(5, 20, 16, 3600, 500, 10000) and hash(s) == hash(Safeguards())
    assert Safeguards(sender_rate=2.5) != s
    assert repr(s) == (
        "Safeguards(sender_rate=5.0, sender_burst=20, max_participants=16, discussion_ttl=3600, "
        "max_discussion_messages=500, capacity=10000)"
    )
    with pytest.raises(AttributeError):
        s.sender_burst = 1  # type: ignore[misc]
    with pytest.raises(OverflowError):
        Safeguards(sender_burst=-1)


@pytest.mark.parametrize(
    "bad",
    [
        {"sender_rate": 0.0},
        {"sender_rate": -1.0},
        {"sender_rate": float("nan")},
        {"sender_rate": float("inf")},
        {"sender_burst": 0},
        {"max_participants": 0},
        {"discussion_ttl": 0},
        {"max_discussion_messages": 0},
        {"capacity": 0},
    ],
    ids=lambda bad: f"{next(iter(bad))}={next(iter(bad.values()))}",
)
def test_safeguards_that_make_no_sense_are_a_core_error(bad: dict[str, Any]) -> None:
    with pytest.raises(CoreError, match=next(iter(bad))):
        Safeguards(**bad)


def test_a_gate_shows_its_safeguards() -> None:
    assert Gate().safeguards is None
    assert Gate(safeguards=Safeguards(sender_burst=3)).safeguards == Safeguards(sender_burst=3)
    assert Gate(Limits(max_hops=5), 10, Safeguards()).limits.max_hops == 5


def test_reject_reasons_end_with_the_safeguards_own() -> None:
    assert REJECT_REASONS[-4:] == ("duplicate", "rate", "closed", "participants")


# --- a gate without safeguards --------------------------------------------------------------


def test_a_gate_without_safeguards_admits_a_flood_as_it_always_did() -> None:
    gate = Gate()
    flood = [meta(ALICE) for _ in range(200)]
    assert outcomes(gate, flood) == ["admitted"] * 200
    assert gate.discussion(ISSUE, NOW) is None
    assert outcome(gate, flood[0]) == "duplicate"


# --- rate: one signer's token bucket -----------------------------------------------------------


def test_a_flood_from_one_signer_admits_its_burst_then_its_rate() -> None:
    gate = guarded()
    first = outcomes(gate, [escalation(ALICE) for _ in range(200)], NOW)
    assert first == ["admitted"] * 20 + ["rate"] * 180
    # Refused messages took no tokens: a second later the rate's 5 are there, no more.
    assert outcomes(gate, [escalation(ALICE) for _ in range(200)], NOW + 1000).count("admitted") == 5
    assert outcomes(gate, [escalation(ALICE) for _ in range(200)], NOW + 1200).count("admitted") == 1
    # Another signer has a bucket of its own.
    assert outcomes(gate, [escalation(BOB) for _ in range(30)], NOW + 1200).count("admitted") == 20


def test_a_bucket_refills_no_further_than_its_burst() -> None:
    gate = guarded(sender_rate=100.0, sender_burst=3)
    assert outcomes(gate, [escalation(ALICE) for _ in range(5)], NOW).count("admitted") == 3
    assert outcomes(gate, [escalation(ALICE) for _ in range(10)], NOW + 50_000).count("admitted") == 3


def test_capabilities_are_never_rate_limited() -> None:
    gate = guarded(sender_burst=1)
    assert outcomes(gate, [capabilities(ALICE) for _ in range(100)]) == ["admitted"] * 100
    assert outcome(gate, escalation(ALICE)) == "admitted"  # nor did they spend Alice's one token
    assert verify_envelope(capabilities(ALICE), now_ms=NOW).discussion_key is None


def test_escalations_are_rate_limited_but_belong_to_no_discussion() -> None:
    gate = guarded(sender_burst=2, max_discussion_messages=1)
    env = verify_envelope(escalation(ALICE), now_ms=NOW)
    assert env.discussion_key is None
    assert outcomes(gate, [escalation(ALICE) for _ in range(3)]) == ["admitted", "admitted", "rate"]
    # A message cap of 1 would have closed a discussion after the first.
    assert outcomes(gate, [escalation(BOB) for _ in range(2)]) == ["admitted", "admitted"]


def test_threads_sharing_a_gate_get_exactly_one_burst_between_them() -> None:
    gate = guarded()
    batches = [[escalation(ALICE) for _ in range(25)] for _ in range(8)]
    results: list[str] = []
    lock = threading.Lock()

    def run(batch: list[bytes]) -> None:
        got = outcomes(gate, batch)
        with lock:
            results.extend(got)

    threads = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("admitted") == 20 and results.count("rate") == 180


# --- discussions ---------------------------------------------------------------------------------


def test_a_meta_discussion_is_its_issue_topic_and_a_help_discussion_its_request_id() -> None:
    def key(data: bytes) -> str | None:
        return verify_envelope(data, now_ms=NOW).discussion_key

    assert key(meta(ALICE)) == ISSUE
    assert key(help_request(ALICE)) == key(help_response(BOB)) == f"help:{REQUEST}"
    assert key(help_response(BOB, OTHER_REQUEST)) == f"help:{OTHER_REQUEST}"


def test_a_help_request_and_its_responses_are_counted_together() -> None:
    gate = guarded(max_discussion_messages=3)
    assert outcomes(gate, [help_request(ALICE), help_response(BOB), help_response(BOB)]) == ["admitted"] * 3
    assert outcome(gate, help_response(KeyPair.generate())) == "closed"
    assert outcome(gate, help_response(BOB, OTHER_REQUEST)) == "admitted"
    assert gate.discussion(f"help:{REQUEST}", NOW) == {
        "opened_ms": NOW,
        "closes_ms": NOW + 3_600_000,
        "messages": 3,
        "participants": 2,
        "closed": True,
    }
    assert state(gate, f"help:{OTHER_REQUEST}", NOW)["messages"] == 1
    assert gate.discussion(REQUEST, NOW) is None


def test_a_discussion_opens_with_its_first_message_at_the_earlier_of_ts_and_now() -> None:
    gate = guarded(discussion_ttl=10)
    late, early = "bzzz/meta/issue/o/r/1", "bzzz/meta/issue/o/r/2"
    gate.admit(meta(ALICE, late, ts_ms=NOW - 5000), NOW)
    gate.admit(meta(ALICE, early, ts_ms=NOW + 20_000), NOW)  # from the allowed future
    assert gate.discussion(late, NOW) == {
        "opened_ms": NOW - 5000,
        "closes_ms": NOW + 5000,
        "messages": 1,
        "participants": 1,
        "closed": False,
    }
    assert state(gate, early, NOW)["opened_ms"] == NOW


def test_a_discussion_past_its_ttl_is_closed_and_stays_closed() -> None:
    gate = guarded(discussion_ttl=10)
    assert outcome(gate, meta(ALICE), NOW) == "admitted"
    assert outcome(gate, meta(BOB, ts_ms=NOW + 10_000), NOW + 10_000) == "admitted"  # up to and including
    for later in (NOW + 10_001, NOW + 30_000, NOW + 3_600_000):
        assert outcome(gate, meta(ALICE, ts_ms=later), later) == "closed"
        assert state(gate, ISSUE, later)["closed"] is True
    assert state(gate, ISSUE, NOW)["messages"] == 2
    assert outcome(gate, meta(ALICE, "bzzz/meta/issue/o/r/2", ts_ms=NOW + 30_000), NOW + 30_000) == "admitted"


def test_a_discussion_that_holds_its_message_cap_is_closed_to_everyone() -> None:
    gate = guarded(max_discussion_messages=4)
    assert outcomes(gate, [meta(ALICE), meta(BOB), meta(ALICE), meta(BOB)]) == ["admitted"] * 4
    assert outcome(gate, meta(ALICE)) == "closed"
    assert outcome(gate, meta(KeyPair.generate())) == "closed"
    assert outcome(gate, meta(BOB, ts_ms=NOW + 50_000), NOW + 50_000) == "closed"
    assert state(gate, ISSUE, NOW)["messages"] == 4


def test_a_seventeenth_signer_is_refused_but_the_sixteen_keep_talking() -> None:
    gate = guarded()
    signers = [KeyPair.generate() for _ in range(17)]
    assert outcomes(gate, [meta(key) for key in signers[:16]]) == ["admitted"] * 16
    assert outcome(gate, meta(signers[16])) == "participants"
    assert outcomes(gate, [meta(key) for key in signers[:16]]) == ["admitted"] * 16
    assert state(gate, ISSUE, NOW)["participants"] == 16
    assert outcome(gate, meta(signers[16], "bzzz/meta/issue/o/r/2")) == "admitted"


# --- order of the checks -----------------------------------------------------------------------------


def test_dedup_and_source_come_first_and_take_no_token() -> None:
    gate = guarded(sender_burst=2)
    first = escalation(ALICE)
    assert outcomes(gate, [first, first]) == ["admitted", "duplicate"]
    second = escalation(ALICE)
    with pytest.raises(EnvelopeRejected) as info:
        gate.admit(second, NOW, source_peer=peer_id(BOB.public_key))
    assert info.value.reason == "source"
    gate.admit(second, NOW, source_peer=peer_id(ALICE.public_key))
    assert outcome(gate, escalation(ALICE)) == "rate"


def test_the_rate_comes_before_closed_and_closed_before_participants() -> None:
    gate = guarded(sender_burst=1, max_participants=1, discussion_ttl=10)
    assert outcome(gate, meta(ALICE)) == "admitted"
    later = NOW + 10_001
    assert outcome(gate, meta(ALICE, ts_ms=later), NOW + 100) == "rate"  # no token, and closed
    assert outcome(gate, meta(BOB, ts_ms=later), later) == "closed"  # closed, and one too many
    other = "bzzz/meta/issue/o/r/2"
    assert outcomes(gate, [meta(ALICE, other, later), meta(CAROL, other, later)], later) == ["admitted", "participants"]


def test_a_message_refused_by_a_safeguard_keeps_its_msg_id_claimed() -> None:
    gate = guarded(max_participants=1)
    gate.admit(meta(ALICE), NOW)
    refused = meta(BOB)
    assert outcome(gate, refused) == "participants"
    assert outcome(gate, refused, NOW + 1000) == "duplicate"
    assert len(gate) == 2


def test_a_batch_counts_each_message_against_its_signer_in_order() -> None:
    gate = guarded(sender_burst=3)
    out = gate.admit_batch([meta(ALICE) for _ in range(5)], NOW)
    assert [x.reason if isinstance(x, EnvelopeRejected) else "admitted" for x in out] == ["admitted"] * 3 + ["rate"] * 2
    assert all(isinstance(x, Envelope) for x in out[:3])
    assert state(gate, ISSUE, NOW)["messages"] == 3


def test_admit_batch_with_safeguards_still_lets_other_threads_run() -> None:
    batch = [escalation(ALICE) for _ in range(2000)]
    gate = guarded()
    assert ticks_of_another_thread_during(lambda: gate.admit_batch(batch, NOW)) > 0


# --- memory ---------------------------------------------------------------------------------------------


def test_memory_stays_bounded_by_capacity() -> None:
    gate = guarded(capacity=10, sender_rate=0.001, sender_burst=1)
    first = KeyPair.generate()
    assert outcomes(gate, [meta(first, "bzzz/meta/issue/o/r/1"), escalation(first)]) == ["admitted", "rate"]
    for i in range(2, 1001):
        assert outcome(gate, meta(KeyPair.generate(), f"bzzz/meta/issue/o/r/{i}"), NOW + i) == "admitted"
    remembered = [i for i in range(1, 1001) if gate.discussion(f"bzzz/meta/issue/o/r/{i}", NOW + 1000) is not None]
    assert remembered == list(range(991, 1001))
    # The first signer was forgotten too: it starts again with a full bucket.
    assert outcome(gate, escalation(first), NOW + 1000) == "admitted"


def test_clear_forgets_signers_and_discussions_too() -> None:
    gate = guarded(sender_burst=1)
    data = meta(ALICE)
    assert outcomes(gate, [data, meta(ALICE)]) == ["admitted", "rate"]
    gate.clear()
    assert len(gate) == 0 and gate.discussion(ISSUE, NOW) is None
    assert outcome(gate, data) == "admitted"
