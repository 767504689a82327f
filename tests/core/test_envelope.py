"""The signed envelope as Python sees it: `bzzz._core` and the pure-Python reference
(tests/reference/envelope.py) run the same cases and must agree, byte for byte and
reason for reason."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from bzzz import _core
from bzzz._core import CoreError, EnvelopeRejected, KeyPair
from tests.gil import ticks_of_another_thread_during
from tests.reference import envelope as ref

NOW = 1_750_000_000_000
MSG_ID = "00112233445566778899aabbccddeeff"
HEX32 = "0123456789abcdef0123456789abcdef"
META_TOPIC = "bzzz/meta/issue/anthonyrawlins/bzzz/12"

ALICE = KeyPair.from_seed(bytes([7]) * 32)
BOB = KeyPair.from_seed(bytes([9]) * 32)


@dataclass(frozen=True)
class Impl:
    name: str
    sign_envelope: Callable[..., bytes]
    verify_envelope: Callable[..., Any]
    forward_envelope: Callable[..., bytes]
    message_id: Callable[[bytes], bytes]
    Limits: Callable[..., Any]
    Gate: Callable[..., Any]
    Rejected: type[Exception]
    REJECT_REASONS: tuple[str, ...]


RUST = Impl(
    "rust",
    _core.sign_envelope,
    _core.verify_envelope,
    _core.forward_envelope,
    _core.message_id,
    _core.Limits,
    _core.Gate,
    EnvelopeRejected,
    _core.REJECT_REASONS,
)
PYTHON = Impl(
    "python",
    ref.sign_envelope,
    ref.verify_envelope,
    ref.forward_envelope,
    ref.message_id,
    ref.Limits,
    ref.Gate,
    ref.Rejected,
    ref.REJECT_REASONS,
)
IMPLS = [RUST, PYTHON]


@pytest.fixture(params=IMPLS, ids=lambda i: i.name)
def impl(request: pytest.FixtureRequest) -> Impl:
    return request.param  # type: ignore[no-any-return]


def meta_payload(text: str = "fix the parser") -> dict[str, Any]:
    return {
        "issue_id": "anthonyrawlins/bzzz#12",
        "parent_id": None,
        "content": {"query_type": "plan", "text": text, "parameters": {"steps": 3}},
    }


SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "capabilities": (
        "bzzz/capabilities",
        {
            "node_id": "walnut",
            "peer_id": "12D3KooWabc",
            "models": ["llama3.1:8b", "qwen2.5-coder"],
            "tools": ["git", "cargo"],
            "load_permille": 250,
            "active_tasks": 1,
            "max_tasks": 4,
            "log_key": "01" * 32,
            "version": "0.1.0",
        },
    ),
    "task_help_request": (
        "bzzz/tasks/help",
        {"request_id": HEX32, "task_id": "o/r#12", "problem": "tests fail", "tried": ["rerun"], "needs": ["rust"]},
    ),
    "task_help_response": (
        "bzzz/tasks/help",
        {"request_id": HEX32, "task_id": "o/r#12", "can_help": True, "text": "try this"},
    ),
    "meta_msg": (META_TOPIC, meta_payload()),
    "escalation": (
        "bzzz/meta/escalation",
        {"issue_id": "o/r#12", "reason": "stuck", "summary": "3 help rounds failed", "messages": [HEX32]},
    ),
}


def sign(
    impl: Impl = RUST,
    key: KeyPair = ALICE,
    type_: str = "meta_msg",
    topic: str = META_TOPIC,
    payload: dict[str, Any] | None = None,
    **kw: Any,
) -> bytes:
    kw = {"msg_id": MSG_ID, "seq": 5, "ts_ms": NOW, **kw}
    return impl.sign_envelope(key.secret_key, type_, topic, "walnut", payload or meta_payload(), **kw)


def wire(data: bytes | None = None) -> dict[str, Any]:
    return json.loads(data or sign())  # type: ignore[no-any-return]


def resign(obj: dict[str, Any], key: KeyPair = ALICE) -> bytes:
    """Sign any object as the spec says, bypassing the signers' own checks, so
    only the receiver's checks decide."""
    obj = {k: v for k, v in obj.items() if k != "sig"}
    signed = ref.DOMAIN_TAG + json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    obj["sig"] = SigningKey(key.seed).sign(signed).signature.hex()
    return json.dumps(obj, ensure_ascii=False).encode()


def edited(**changes: Any) -> bytes:
    obj = wire()
    for key, value in changes.items():
        if value is DELETE:
            obj.pop(key, None)
        else:
            obj[key] = value
    return resign(obj)


def edited_payload(**changes: Any) -> bytes:
    obj = wire()
    for key, value in changes.items():
        if value is DELETE:
            obj["payload"].pop(key, None)
        else:
            obj["payload"][key] = value
    return resign(obj)


def text_replace(old: str, new: str) -> bytes:
    text = sign().decode()
    assert old in text
    return text.replace(old, new, 1).encode()


DELETE = object()
BAD_POINT = (bytes([2]) + bytes(31)).hex()  # y = 2 is not on the curve


def reason(impl: Impl, data: bytes, limits: Any = None, now_ms: int = NOW) -> str:
    with pytest.raises(impl.Rejected) as info:
        impl.verify_envelope(data, impl.Limits(**limits) if limits else None, now_ms)
    return info.value.reason  # type: ignore[attr-defined,no-any-return]


# --- one table of inputs, both implementations --------------------------------------

CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    # size: checked before parsing
    "over 64 KiB of anything": (lambda: b"x" * 65537, "size"),
    # malformed
    "not JSON": (lambda: b"hello", "malformed"),
    "empty": (lambda: b"", "malformed"),
    "a JSON array": (lambda: b"[1,2]", "malformed"),
    "a JSON string": (lambda: b'"x"', "malformed"),
    "invalid UTF-8": (lambda: sign().replace(b"fix", b"fi\xff"), "malformed"),
    "a byte order mark": (lambda: b"\xef\xbb\xbf" + sign(), "malformed"),
    "trailing bytes": (lambda: sign() + b" x", "malformed"),
    "a float in the payload": (lambda: text_replace('"steps":3', '"steps":3.0'), "malformed"),
    "an exponent": (lambda: text_replace('"steps":3', '"steps":3e0'), "malformed"),
    "minus zero": (lambda: text_replace('"steps":3', '"steps":-0'), "malformed"),
    "an integer above u64": (lambda: text_replace('"steps":3', '"steps":18446744073709551616'), "malformed"),
    "an integer below i64": (lambda: text_replace('"steps":3', '"steps":-9223372036854775809'), "malformed"),
    "NaN": (lambda: text_replace('"steps":3', '"steps":NaN'), "malformed"),
    "a duplicate key": (lambda: text_replace('"steps":3', '"steps":3,"steps":3'), "malformed"),
    "a duplicate key spelled with an escape": (
        lambda: text_replace('"steps":3', '"steps":3,"\\u0073teps":3'),
        "malformed",
    ),
    "a duplicate top-level key": (lambda: text_replace('"seq":5', '"seq":5,"seq":5'), "malformed"),
    "a lone surrogate": (lambda: text_replace("fix the parser", "fix \\ud800"), "malformed"),
    "a raw control character": (lambda: text_replace("fix the parser", "fix\x01"), "malformed"),
    # envelope 1, payload 2, content 3, parameters 4, then 29 arrays
    "nesting 33 deep": (lambda: text_replace('"steps":3', '"steps":' + "[" * 29 + "]" * 29), "malformed"),
    "uppercase hex in from": (
        lambda: text_replace(ALICE.public_key.hex(), ALICE.public_key.hex().upper()),
        "malformed",
    ),
    "a short msg_id": (lambda: edited(msg_id="abc"), "malformed"),
    "a short sig": (lambda: text_replace('"sig":"', '"sig":"00'), "malformed"),
    "bad hex beats an unknown field": (lambda: edited(msg_id="XYZ", extra=1), "malformed"),
    # schema
    "an unknown field": (lambda: edited(extra=1), "schema"),
    "v 2": (lambda: edited(v=2), "schema"),
    "v true": (lambda: edited(v=True), "schema"),
    "no v": (lambda: edited(v=DELETE), "schema"),
    "no from": (lambda: edited(**{"from": DELETE}), "schema"),
    "no sig": (lambda: json.dumps({k: v for k, v in wire().items() if k != "sig"}).encode(), "schema"),
    "no payload": (lambda: edited(payload=DELETE), "schema"),
    "no type": (lambda: edited(type=DELETE), "schema"),
    "from a number": (lambda: edited(**{"from": 7}), "schema"),
    "hop_count 256": (lambda: edited(hop_count=256), "schema"),
    "hop_count -1": (lambda: edited(hop_count=-1), "schema"),
    "hop_count true": (lambda: edited(hop_count=True), "schema"),
    "ttl above u32": (lambda: edited(ttl=2**32), "schema"),
    "seq a string": (lambda: edited(seq="5"), "schema"),
    "an unknown type": (lambda: edited(type="gossip"), "schema"),
    "a type on the wrong topic": (lambda: edited(topic="bzzz/capabilities"), "schema"),
    "a meta topic without a number": (lambda: edited(topic="bzzz/meta/issue/o/r"), "schema"),
    "a meta topic with a leading zero": (lambda: edited(topic="bzzz/meta/issue/o/r/012"), "schema"),
    "a meta topic with a space": (lambda: edited(topic="bzzz/meta/issue/o r/x/1"), "schema"),
    "an empty node_id": (lambda: edited(node_id=""), "schema"),
    "a payload that is a list": (lambda: edited(payload=[]), "schema"),
    "a payload field missing": (lambda: edited_payload(issue_id=DELETE), "schema"),
    "a payload field of the wrong type": (lambda: edited_payload(issue_id=12), "schema"),
    "a bad parent_id": (lambda: edited_payload(parent_id="XYZ"), "schema"),
    "an unknown query_type": (
        lambda: edited_payload(content={"query_type": "rant", "text": "", "parameters": {}}),
        "schema",
    ),
    "text over 8 KiB": (
        lambda: edited_payload(content={"query_type": "plan", "text": "é" * 4097, "parameters": {}}),
        "schema",
    ),
    "parameters not an object": (
        lambda: edited_payload(content={"query_type": "plan", "text": "", "parameters": 1}),
        "schema",
    ),
    # hops, ttl, skew
    "four hops": (lambda: edited(hop_count=4), "hops"),
    "a ttl above an hour": (lambda: edited(ttl=3601), "ttl"),
    "expired": (lambda: edited(ts=NOW - 60_001), "ttl"),
    "from the future": (lambda: edited(ts=NOW + 30_001), "skew"),
    "hops beat a bad signature": (lambda: text_replace('"hop_count":0', '"hop_count":9'), "hops"),
    # signature
    "a changed payload": (lambda: text_replace("fix the parser", "fix the parses"), "signature"),
    "a changed seq": (lambda: text_replace('"seq":5', '"seq":6'), "signature"),
    "another key in from": (lambda: text_replace(ALICE.public_key.hex(), BOB.public_key.hex()), "signature"),
    "signed by another key": (lambda: resign(wire(), BOB), "signature"),
    "from not a curve point": (lambda: text_replace(ALICE.public_key.hex(), BAD_POINT), "signature"),
    "an all-zero signature": (lambda: json.dumps({**wire(), "sig": "00" * 64}).encode(), "signature"),
}

ACCEPTED: dict[str, Callable[[], bytes]] = {
    "the signed bytes": lambda: sign(),
    "keys reordered and pretty-printed": lambda: json.dumps(dict(reversed(wire().items())), indent=2).encode(),
    "unknown payload fields": lambda: edited_payload(extra={"anything": [1, "two", None, True]}),
    # envelope 1, payload 2, then 30 arrays
    "nesting 32 deep": lambda: edited_payload(extra=json.loads("[" * 30 + "]" * 30)),
    "three hops": lambda: edited(hop_count=3),
    "ts at the edge of the skew": lambda: edited(ts=NOW + 30_000),
    "ts at the edge of expiry": lambda: edited(ts=NOW - 60_000),
    "an uppercase \\u escape": lambda: edited_payload(extra="\x1f").replace(b"\\u001f", b"\\u001F"),
    "an escaped slash": lambda: edited_payload(extra="a/b").replace(b"a/b", b"a\\/b"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_bad_input_is_refused_for_its_reason(impl: Impl, case: str) -> None:
    make, expected = CASES[case]
    assert reason(impl, make()) == expected


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_each_good_input_is_accepted_as_the_same_message(impl: Impl, case: str) -> None:
    data = ACCEPTED[case]()
    env = impl.verify_envelope(data, None, NOW)
    assert json.loads(env.to_bytes()) == json.loads(data)
    assert impl.verify_envelope(env.to_bytes(), None, NOW) == env


def test_every_reject_reason_is_reachable_and_listed() -> None:
    # The gate's own: duplicate and source here, the safeguards' in test_safeguards.py.
    reached = {expected for _, expected in CASES.values()} | {"duplicate", "source", "rate", "closed", "participants"}
    assert set(_core.REJECT_REASONS) == reached
    assert _core.REJECT_REASONS == ref.REJECT_REASONS
    assert len(set(_core.REJECT_REASONS)) == len(_core.REJECT_REASONS)


def test_limits_are_configurable(impl: Impl) -> None:
    data = edited(hop_count=5, ttl=7200, ts=NOW + 60_000)
    assert reason(impl, data, {"max_size": 100}) == "size"
    assert reason(impl, data) == "hops"
    assert reason(impl, data, {"max_hops": 5}) == "ttl"
    assert reason(impl, data, {"max_hops": 5, "max_ttl": 7200}) == "skew"
    loose = impl.Limits(max_hops=5, max_ttl=7200, max_clock_skew_ms=60_000)
    assert impl.verify_envelope(data, loose, NOW).hop_count == 5


def test_the_rejection_is_a_core_error_with_its_reason_set() -> None:
    with pytest.raises(EnvelopeRejected) as info:
        _core.verify_envelope(text_replace("fix the parser", "fix the parses"), now_ms=NOW)
    assert isinstance(info.value, CoreError) and isinstance(info.value, ValueError)
    assert info.value.reason == "signature"
    assert str(info.value).startswith("signature: ")


# --- one implementation against the other --------------------------------------------


@pytest.mark.parametrize("type_", SAMPLES)
def test_both_implementations_sign_the_same_bytes_and_verify_each_other(type_: str) -> None:
    topic, payload = SAMPLES[type_]
    rust = sign(RUST, type_=type_, topic=topic, payload=payload)
    python = sign(PYTHON, type_=type_, topic=topic, payload=payload)
    assert rust == python  # ed25519 is deterministic, the encoding canonical
    from_rust = ref.verify_envelope(rust, now_ms=NOW)
    from_python = _core.verify_envelope(python, now_ms=NOW)
    for env in (from_rust, from_python):
        assert (env.type, env.topic, env.node_id, env.msg_id, env.seq, env.ts_ms, env.ttl, env.hop_count) == (
            type_,
            topic,
            "walnut",
            MSG_ID,
            5,
            NOW,
            60,
            0,
        )
        assert env.payload == payload
        assert env.sender == ALICE.public_key
    assert from_rust.signed_bytes() == from_python.signed_bytes()
    assert from_rust.to_bytes() == from_python.to_bytes() == rust


def test_the_signed_bytes_are_the_domain_tag_and_the_sorted_compact_object() -> None:
    env = _core.verify_envelope(sign(), now_ms=NOW)
    obj = wire()
    del obj["sig"]
    assert (
        env.signed_bytes()
        == b"bzzz/envelope/v1\n" + json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert env.signature == bytes.fromhex(wire()["sig"])
    assert ALICE.public_key == env.sender


def test_signing_defaults_to_a_random_msg_id_and_the_current_time() -> None:
    a = json.loads(_core.sign_envelope(ALICE.secret_key, "meta_msg", META_TOPIC, "walnut", meta_payload(), seq=1))
    b = json.loads(_core.sign_envelope(ALICE.secret_key, "meta_msg", META_TOPIC, "walnut", meta_payload(), seq=1))
    assert a["msg_id"] != b["msg_id"] and len(a["msg_id"]) == 32
    assert abs(a["ts"] - time.time() * 1000) < 5_000
    assert (a["ttl"], a["hop_count"]) == (60, 0)
    assert _core.verify_envelope(json.dumps(a).encode()).msg_id == a["msg_id"]


@pytest.mark.parametrize(
    "payload, error",
    [
        ({**meta_payload(), "load": 0.5}, "malformed"),
        ({**meta_payload(), "big": 2**64}, "malformed"),
        ({**meta_payload(), "small": -(2**63) - 1}, "malformed"),
        ({**meta_payload(), "bad": "\ud800"}, "malformed"),
        ({**meta_payload(), "issue_id": 12}, "schema"),
        ({"issue_id": "x"}, "schema"),
        ({**meta_payload(), 1: "x"}, TypeError),
        ({**meta_payload(), "x": {1, 2}}, TypeError),
        ({**meta_payload(), "x": b"bytes"}, TypeError),
    ],
    ids=[
        "float",
        "above u64",
        "below i64",
        "lone surrogate",
        "wrong type",
        "missing fields",
        "int key",
        "set",
        "bytes",
    ],
)
def test_signing_checks_the_payload_as_a_receiver_would(impl: Impl, payload: dict[Any, Any], error: Any) -> None:
    if isinstance(error, str):
        with pytest.raises(impl.Rejected) as info:
            sign(impl, payload=payload)
        assert info.value.reason == error  # type: ignore[attr-defined]
    else:
        with pytest.raises(error):
            sign(impl, payload=payload)


def test_signing_refuses_a_payload_that_contains_itself(impl: Impl) -> None:
    payload = meta_payload()
    payload["content"]["parameters"]["me"] = payload
    with pytest.raises(impl.Rejected) as info:
        sign(impl, payload=payload)
    assert info.value.reason == "malformed"  # type: ignore[attr-defined]


def test_signing_refuses_a_bad_msg_id_and_a_wrong_topic(impl: Impl) -> None:
    with pytest.raises(impl.Rejected, match="msg_id"):
        sign(impl, msg_id="ABCDEF")
    with pytest.raises(impl.Rejected) as info:
        sign(impl, topic="bzzz/capabilities")
    assert info.value.reason == "schema"  # type: ignore[attr-defined]


def test_tuples_sign_as_lists_and_bools_stay_bools(impl: Impl) -> None:
    topic, payload = SAMPLES["capabilities"]
    env = impl.verify_envelope(
        sign(impl, type_="capabilities", topic=topic, payload={**payload, "models": ("a", "b"), "flag": True}),
        None,
        NOW,
    )
    assert env.payload["models"] == ["a", "b"] and env.payload["flag"] is True


def test_a_wrong_secret_key_length_is_a_core_error() -> None:
    with pytest.raises(CoreError, match="64 bytes"):
        _core.sign_envelope(ALICE.seed, "meta_msg", META_TOPIC, "n", meta_payload(), seq=1)
    with pytest.raises(CoreError, match="does not match"):
        _core.sign_envelope(ALICE.seed + BOB.public_key, "meta_msg", META_TOPIC, "n", meta_payload(), seq=1)
    with pytest.raises(CoreError, match="64 bytes"):
        _core.forward_envelope(sign(), b"short", now_ms=NOW)


# --- forwarding ----------------------------------------------------------------------


def test_a_relay_forwards_with_one_more_hop_under_its_own_key(impl: Impl) -> None:
    relayed = impl.forward_envelope(sign(), BOB.secret_key, None, NOW)
    env = impl.verify_envelope(relayed, None, NOW)
    origin = impl.verify_envelope(sign(), None, NOW)
    assert env.hop_count == 1 and env.sender == BOB.public_key
    assert (env.msg_id, env.payload, env.node_id, env.seq, env.ts_ms, env.ttl) == (
        origin.msg_id,
        origin.payload,
        origin.node_id,
        origin.seq,
        origin.ts_ms,
        origin.ttl,
    )
    assert relayed == (ref if impl is RUST else _core).forward_envelope(sign(), BOB.secret_key, None, NOW)


def test_a_relay_refuses_past_max_hops(impl: Impl) -> None:
    data = sign()
    for _hop in (1, 2, 3):
        data = impl.forward_envelope(data, BOB.secret_key, None, NOW)
    with pytest.raises(impl.Rejected) as info:
        impl.forward_envelope(data, BOB.secret_key, None, NOW)
    assert info.value.reason == "hops"  # type: ignore[attr-defined]
    with pytest.raises(impl.Rejected) as info:
        impl.forward_envelope(text_replace("fix the parser", "fix the parses"), BOB.secret_key, None, NOW)
    assert info.value.reason == "signature"  # type: ignore[attr-defined]


# --- message ids ---------------------------------------------------------------------


def test_the_message_id_is_20_bytes_of_blake2b_of_the_canonical_wire_bytes(impl: Impl) -> None:
    data = sign()
    expected = hashlib.blake2b(data, digest_size=32).digest()[:20]
    assert impl.message_id(data) == expected
    assert impl.message_id(ACCEPTED["keys reordered and pretty-printed"]()) == expected
    assert impl.message_id(b"garbage") == hashlib.blake2b(b"garbage", digest_size=32).digest()[:20]
    assert _core.verify_envelope(data, now_ms=NOW).message_id() == expected


def test_a_copy_with_a_corrupted_signature_has_another_message_id(impl: Impl) -> None:
    sig = wire()["sig"]
    corrupted = text_replace(sig, ("1" if sig[0] == "0" else "0") + sig[1:])
    assert impl.message_id(corrupted) != impl.message_id(sign())


# --- the Envelope object and Limits ------------------------------------------------------


def test_an_envelope_exposes_its_fields_and_is_frozen() -> None:
    env = _core.verify_envelope(sign(), now_ms=NOW)
    assert env.type == "meta_msg" and env.topic == META_TOPIC and env.node_id == "walnut"
    assert env.msg_id == MSG_ID and env.seq == 5 and env.ts_ms == NOW and env.ttl == 60 and env.hop_count == 0
    assert env.expires_at_ms == NOW + 60_000 and len(env.signature) == 64 and len(env.sender) == 32
    assert env.payload == meta_payload()
    env.payload["issue_id"] = "changed"
    assert env.payload == meta_payload()
    with pytest.raises(AttributeError):
        env.seq = 6  # type: ignore[misc]
    assert "meta_msg" in repr(env)
    assert env == _core.verify_envelope(sign(), now_ms=NOW)


def test_limits_have_readable_defaults_and_are_frozen() -> None:
    limits = _core.Limits()
    assert (limits.max_size, limits.max_hops, limits.max_ttl, limits.max_clock_skew_ms) == (65536, 3, 3600, 30000)
    assert limits == _core.Limits(65536, 3, 3600, 30000)
    assert (ref.Limits().max_size, ref.Limits().max_hops) == (limits.max_size, limits.max_hops)
    assert _core.Limits(max_hops=5) != limits and hash(_core.Limits()) == hash(limits)
    assert repr(limits) == "Limits(max_size=65536, max_hops=3, max_ttl=3600, max_clock_skew_ms=30000)"
    with pytest.raises(AttributeError):
        limits.max_hops = 4  # type: ignore[misc]
    with pytest.raises(OverflowError):
        _core.Limits(max_hops=256)


# --- the gate ------------------------------------------------------------------------


def test_the_gate_admits_once_then_says_duplicate(impl: Impl) -> None:
    gate = impl.Gate()
    assert gate.admit(sign(), NOW).msg_id == MSG_ID
    with pytest.raises(impl.Rejected) as info:
        gate.admit(impl.forward_envelope(sign(), BOB.secret_key, None, NOW), NOW + 1)
    assert info.value.reason == "duplicate"  # type: ignore[attr-defined]
    assert len(gate) == 1


def test_a_forged_message_cannot_claim_a_msg_id(impl: Impl) -> None:
    gate = impl.Gate()
    with pytest.raises(impl.Rejected):
        gate.admit(text_replace("fix the parser", "rm -rf /"), NOW)
    assert len(gate) == 0
    assert gate.admit(sign(), NOW).payload == meta_payload()


def test_the_gate_admits_a_message_only_from_the_peer_that_signed_it(impl: Impl) -> None:
    gate = impl.Gate()
    with pytest.raises(impl.Rejected) as info:
        gate.admit(sign(), NOW, source_peer=_core.peer_id(BOB.public_key))
    assert info.value.reason == "source"  # type: ignore[attr-defined]
    assert len(gate) == 0  # refused for its source, it claimed no msg_id
    assert gate.admit(sign(), NOW, source_peer=_core.peer_id(ALICE.public_key)).msg_id == MSG_ID


def test_a_forged_signature_is_blamed_on_the_signature_whatever_the_source(impl: Impl) -> None:
    with pytest.raises(impl.Rejected) as info:
        impl.Gate().admit(text_replace("fix the parser", "rm -rf /"), NOW, source_peer=_core.peer_id(ALICE.public_key))
    assert info.value.reason == "signature"  # type: ignore[attr-defined]


def test_peer_ids_agree_with_the_reference_and_refuse_short_keys() -> None:
    assert _core.peer_id(ALICE.public_key) == ref.peer_id(ALICE.public_key)
    with pytest.raises(CoreError):
        _core.peer_id(ALICE.public_key[:31])


def test_a_gate_entry_lasts_as_long_as_its_message(impl: Impl) -> None:
    gate = impl.Gate()
    gate.admit(sign(), NOW)
    for now, expected in ((NOW + 60_000, "duplicate"), (NOW + 60_001, "ttl")):
        with pytest.raises(impl.Rejected) as info:
            gate.admit(sign(), now)
        assert info.value.reason == expected  # type: ignore[attr-defined]
    later = sign(msg_id=HEX32, ts_ms=NOW + 60_000)
    gate.admit(later, NOW + 60_001)
    assert len(gate) == 1


def test_a_batch_comes_back_in_order_with_rejections_as_exception_objects(impl: Impl) -> None:
    gate = impl.Gate()
    bad = text_replace("fix the parser", "fix the parses")
    out = gate.admit_batch([sign(), bad, sign(), b"{}"], NOW)
    assert [getattr(x, "reason", "ok") for x in out] == ["ok", "signature", "duplicate", "schema"]
    assert isinstance(out[1], impl.Rejected)
    assert out[0].msg_id == MSG_ID


def test_a_batch_of_something_other_than_bytes_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _core.Gate().admit_batch([sign(), "text"])  # type: ignore[list-item]


def test_a_gate_rejects_capacity_zero() -> None:
    with pytest.raises(CoreError):
        _core.Gate(capacity=0)


def test_threads_sending_the_same_message_through_one_gate_admit_it_once() -> None:
    gate = _core.Gate()
    copies = [sign()] + [_core.forward_envelope(sign(), BOB.secret_key, now_ms=NOW) for _ in range(3)]
    results: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        for data in copies * 5:
            try:
                gate.admit(data, NOW)
                outcome = "ok"
            except EnvelopeRejected as e:
                outcome = e.reason
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1 and results.count("duplicate") == len(results) - 1


def test_admit_batch_lets_other_threads_run_while_it_verifies() -> None:
    batch = [sign(msg_id=f"{i:032x}") for i in range(2000)]
    out: list[object] = []
    assert ticks_of_another_thread_during(lambda: out.extend(_core.Gate().admit_batch(batch, NOW))) > 0
    assert all(not isinstance(x, Exception) for x in out)


# --- properties ------------------------------------------------------------------------

SIGNED = sign()
json_scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(index=st.integers(0, len(SIGNED) - 1), mask=st.integers(1, 255))
def test_any_flipped_byte_is_rejected_and_both_implementations_agree_why(index: int, mask: int) -> None:
    data = bytearray(SIGNED)
    data[index] ^= mask
    reasons = []
    for impl in IMPLS:
        with pytest.raises(impl.Rejected) as info:
            impl.verify_envelope(bytes(data), None, NOW)
        reasons.append(info.value.reason)  # type: ignore[attr-defined]
    assert reasons[0] == reasons[1]


@given(extra=json_values, text=st.text(max_size=100))
def test_both_implementations_encode_any_payload_identically(extra: Any, text: str) -> None:
    payload = meta_payload(text)
    payload["content"]["parameters"]["extra"] = extra
    rust, python = sign(RUST, payload=payload), sign(PYTHON, payload=payload)
    assert rust == python
    for impl in IMPLS:
        env = impl.verify_envelope(rust, None, NOW)
        assert env.to_bytes() == rust and env.payload == payload
    messy = json.dumps(json.loads(rust), indent=1, ensure_ascii=True).encode()
    assert _core.verify_envelope(messy, now_ms=NOW).to_bytes() == rust
    assert _core.message_id(messy) == ref.message_id(messy) == _core.message_id(rust)


@given(key=st.sampled_from(sorted(ref.ENVELOPE_KEYS) + ["extra"]), value=json_values, delete=st.booleans())
def test_both_implementations_agree_on_any_edited_field(key: str, value: Any, delete: bool) -> None:
    data = edited(**{key: DELETE if delete else value})
    outcomes = []
    for impl in IMPLS:
        try:
            impl.verify_envelope(data, None, NOW)
            outcomes.append("ok")
        except impl.Rejected as e:
            outcomes.append(e.reason)  # type: ignore[attr-defined]
    assert outcomes[0] == outcomes[1]


@given(data=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_input_is_refused_alike_and_ids_agree(data: bytes) -> None:
    reasons = []
    for impl in IMPLS:
        with pytest.raises(impl.Rejected) as info:
            impl.verify_envelope(data, None, NOW)
        reasons.append(info.value.reason)  # type: ignore[attr-defined]
    assert reasons[0] == reasons[1]
    assert _core.message_id(data) == ref.message_id(data)
