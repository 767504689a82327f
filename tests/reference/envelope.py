"""A pure-Python signed envelope, dedup cache and gate (json + hashlib + PyNaCl).

Written from the specification in the module docs of rust/core/src/envelope/mod.rs,
independently of the Rust code, to cross-check it and to be the benchmark
baseline. Same checks, same order, same reasons, up to dedup (step 10): the
discussion safeguards (steps 11 to 13, reasons rate, closed and participants)
are not implemented here; their reasons are listed so the two sets agree, and
tests/core/test_safeguards.py checks the core alone.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

DOMAIN_TAG = b"bzzz/envelope/v1\n"
VERSION = 1
MAX_DEPTH = 32
MESSAGE_ID_LEN = 20
REJECT_REASONS = (
    "size",
    "malformed",
    "schema",
    "signature",
    "source",
    "hops",
    "ttl",
    "skew",
    "duplicate",
    "rate",
    "closed",
    "participants",
)

I64_MIN, U64_MAX, U32_MAX, U8_MAX = -(2**63), 2**64 - 1, 2**32 - 1, 255
ID_MAX, TEXT_MAX, LIST_MAX, TOPIC_MAX = 256, 8192, 256, 256
QUERY_TYPES = ("plan", "objection", "question", "answer", "suggestion", "correction", "ack", "help")
ENVELOPE_KEYS = frozenset(
    ("from", "hop_count", "msg_id", "node_id", "payload", "seq", "sig", "topic", "ts", "ttl", "type", "v")
)
_HEX = re.compile(r"[0-9a-f]*", re.ASCII)
# The only way JSON text decoded from valid UTF-8 can yield a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]", re.ASCII)
_META_TOPIC = re.compile(r"bzzz/meta/issue/[A-Za-z0-9._-]{1,100}/[A-Za-z0-9._-]{1,100}/[1-9][0-9]{0,18}", re.ASCII)


class Rejected(ValueError):
    """An envelope refused; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_size: int = 65536
    max_hops: int = 3
    max_ttl: int = 3600
    max_clock_skew_ms: int = 30000


# --- strict JSON in, canonical JSON out ------------------------------------------


def _no_float(text: str) -> Any:
    raise Rejected("malformed", f"numbers must be integers, got {text}")


def _int(text: str) -> int:
    if text == "-0":
        raise Rejected("malformed", "-0 is not an integer")
    n = int(text)
    if not I64_MIN <= n <= U64_MAX:
        raise Rejected("malformed", f"integer {text} is outside -2^63..2^64")
    return n


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise Rejected("malformed", "duplicate key")
    return obj


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def parse_strict(data: bytes) -> Any:
    """Accepted JSON (see the spec) -> Python values; Rejected('malformed') otherwise."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_object, parse_float=_no_float, parse_int=_int, parse_constant=_no_float
        )
        too_deep = _depth(value) > MAX_DEPTH
    except Rejected:
        raise
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise Rejected("malformed", f"not accepted JSON: {e}") from None
    if too_deep:
        raise Rejected("malformed", f"nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        canonical_json(value)  # raises for a lone surrogate
    return value


def canonical_json(value: Any) -> bytes:
    """canon(value); Rejected('malformed') for strings that are not Unicode scalar values."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected("malformed", "strings must not hold lone surrogates") from None


def check_value(value: Any, depth: int) -> None:
    """What `sign_envelope` accepts from code: JSON types, integers in range, not too deep."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not I64_MIN <= value <= U64_MAX:
            raise Rejected("malformed", "integers must be in -2^63..2^64")
        return
    if isinstance(value, float):
        raise Rejected("malformed", "floats are not allowed in an envelope; use integers")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected("malformed", "strings must be valid Unicode") from None
        return
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_DEPTH:
            raise Rejected("malformed", f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"payload keys must be str, got {type(key)}")
                check_value(key, depth)
                check_value(item, depth + 1)
        else:
            for item in value:
                check_value(item, depth + 1)
        return
    raise TypeError(f"payload values must be dict, list, tuple, str, int, bool or None, got {type(value)}")


# --- schemas ------------------------------------------------------------------------

Check = Callable[[Any, str], None]


def _fail(path: str, message: str) -> None:
    raise Rejected("schema", f"{path} {message}")


def s(lo: int, hi: int) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, str):
            _fail(path, "must be a string")
        elif not lo <= len(v.encode("utf-8")) <= hi:
            _fail(path, f"must be {lo}..={hi} bytes")

    return check


def hex_(digits: int) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, str) or len(v) != digits or not _HEX.fullmatch(v):
            _fail(path, f"must be {digits} lowercase hex digits")

    return check


def list_of(item: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, (list, tuple)):
            _fail(path, "must be a list")
        elif len(v) > LIST_MAX:
            _fail(path, f"has more than {LIST_MAX} items")
        else:
            for i, x in enumerate(v):
                item(x, f"{path}[{i}]")

    return check


def int_(lo: int, hi: int) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            _fail(path, f"must be an integer in {lo}..={hi}")

    return check


def boolean(v: Any, path: str) -> None:
    if not isinstance(v, bool):
        _fail(path, "must be a boolean")


def null_or(inner: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)

    return check


def one_of(*names: str) -> Check:
    def check(v: Any, path: str) -> None:
        if v not in names or not isinstance(v, str):
            _fail(path, f"must be one of {'|'.join(names)}")

    return check


def obj(fields: dict[str, Check]) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, dict):
            _fail(path, "must be an object")
            return
        for name, field in fields.items():
            if name not in v:
                _fail(f"{path}.{name}", "is missing")
            field(v[name], f"{path}.{name}")

    return check


def any_object(v: Any, path: str) -> None:
    if not isinstance(v, dict):
        _fail(path, "must be an object")


ID, TEXT, NAME, HEX32, HEX64 = s(1, ID_MAX), s(0, TEXT_MAX), s(1, ID_MAX), hex_(32), hex_(64)

PAYLOADS: dict[str, tuple[Callable[[str], bool], Check]] = {
    "capabilities": (
        lambda t: t == "bzzz/capabilities",
        obj(
            {
                "node_id": ID,
                "peer_id": ID,
                "models": list_of(NAME),
                "tools": list_of(NAME),
                "load_permille": int_(0, 100_000),
                "active_tasks": int_(0, U32_MAX),
                "max_tasks": int_(0, U32_MAX),
                "log_key": HEX64,
                "version": ID,
            }
        ),
    ),
    "task_help_request": (
        lambda t: t == "bzzz/tasks/help",
        obj({"request_id": HEX32, "task_id": ID, "problem": TEXT, "tried": list_of(TEXT), "needs": list_of(NAME)}),
    ),
    "task_help_response": (
        lambda t: t == "bzzz/tasks/help",
        obj({"request_id": HEX32, "task_id": ID, "can_help": boolean, "text": TEXT}),
    ),
    "meta_msg": (
        lambda t: len(t.encode("utf-8")) <= TOPIC_MAX and _META_TOPIC.fullmatch(t) is not None,
        obj(
            {
                "issue_id": ID,
                "parent_id": null_or(HEX32),
                "content": obj({"query_type": one_of(*QUERY_TYPES), "text": TEXT, "parameters": any_object}),
            }
        ),
    ),
    "escalation": (
        lambda t: t == "bzzz/meta/escalation",
        obj({"issue_id": ID, "reason": TEXT, "summary": TEXT, "messages": list_of(HEX32)}),
    ),
}


def check_schema(type_: str, topic: str, node_id: str, payload: Any) -> None:
    if not isinstance(payload, dict):
        _fail("payload", "must be an object")
    if type_ not in PAYLOADS:
        _fail("type", f"{type_!r} is not a known message type")
    allows_topic, check_payload = PAYLOADS[type_]
    if not allows_topic(topic):
        _fail("topic", f"{topic!r} does not carry {type_} messages")
    ID(node_id, "node_id")
    check_payload(payload, "payload")


# --- the envelope -----------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    type: str
    topic: str
    node_id: str
    sender: bytes
    msg_id: str
    seq: int
    ts_ms: int
    ttl: int
    hop_count: int
    payload: dict[str, Any]
    signature: bytes

    def fields(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "type": self.type,
            "topic": self.topic,
            "node_id": self.node_id,
            "from": self.sender.hex(),
            "msg_id": self.msg_id,
            "seq": self.seq,
            "ts": self.ts_ms,
            "ttl": self.ttl,
            "hop_count": self.hop_count,
            "payload": self.payload,
        }

    def signed_bytes(self) -> bytes:
        return DOMAIN_TAG + canonical_json(self.fields())

    def to_bytes(self) -> bytes:
        return canonical_json({**self.fields(), "sig": self.signature.hex()})

    def message_id(self) -> bytes:
        return hashlib.blake2b(self.to_bytes(), digest_size=32).digest()[:MESSAGE_ID_LEN]

    @property
    def expires_at_ms(self) -> int:
        return self.ts_ms + self.ttl * 1000


def _signing_key(secret_key: bytes) -> SigningKey:
    if len(secret_key) != 64:
        raise ValueError(f"secret key must be 64 bytes, got {len(secret_key)}")
    key = SigningKey(secret_key[:32])
    if bytes(key.verify_key) != secret_key[32:]:
        raise ValueError("secret key does not match its public key")
    return key


def _sign(key: SigningKey, **fields: Any) -> Envelope:
    unsigned = Envelope(sender=bytes(key.verify_key), signature=b"", **fields)
    signature = key.sign(unsigned.signed_bytes()).signature
    return Envelope(**{**unsigned.__dict__, "signature": signature})


def new_msg_id() -> str:
    return os.urandom(16).hex()


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


def sign_envelope(
    secret_key: bytes,
    type: str,
    topic: str,
    node_id: str,
    payload: dict[str, Any],
    *,
    msg_id: str | None = None,
    seq: int,
    ts_ms: int | None = None,
    ttl: int = 60,
    hop_count: int = 0,
) -> bytes:
    key = _signing_key(secret_key)
    msg_id = new_msg_id() if msg_id is None else msg_id
    if len(msg_id) != 32 or not _HEX.fullmatch(msg_id):
        raise Rejected("malformed", "msg_id must be 32 lowercase hex digits")
    check_value(payload, 1)
    check_schema(type, topic, node_id, payload)
    ts = clock_ms() if ts_ms is None else ts_ms
    for name, value, hi in (
        ("seq", seq, U64_MAX),
        ("ts_ms", ts, U64_MAX),
        ("ttl", ttl, U32_MAX),
        ("hop_count", hop_count, U8_MAX),
    ):
        if not 0 <= value <= hi:
            raise OverflowError(f"{name} must be in 0..={hi}")
    env = _sign(
        key,
        type=type,
        topic=topic,
        node_id=node_id,
        msg_id=msg_id,
        seq=seq,
        ts_ms=ts,
        ttl=ttl,
        hop_count=hop_count,
        payload=payload,
    )
    return env.to_bytes()


def _uint(fields: dict[str, Any], key: str, hi: int) -> int:
    if key not in fields:
        _fail(key, "is missing")
    v = fields[key]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= hi:
        _fail(key, f"must be an integer in 0..={hi}")
    return v  # type: ignore[no-any-return]


def _str(fields: dict[str, Any], key: str) -> str:
    if key not in fields:
        _fail(key, "is missing")
    if not isinstance(fields[key], str):
        _fail(key, "must be a string")
    return fields[key]  # type: ignore[no-any-return]


def verify_envelope(data: bytes, limits: Limits | None = None, now_ms: int | None = None) -> Envelope:
    limits = limits or Limits()
    now = clock_ms() if now_ms is None else now_ms
    # 1. size
    if len(data) > limits.max_size:
        raise Rejected("size", f"{len(data)} bytes, more than the limit {limits.max_size}")
    # 2. accepted JSON, an object, hex
    fields = parse_strict(data)
    if not isinstance(fields, dict):
        raise Rejected("malformed", "an envelope must be a JSON object")
    for key, digits in (("from", 64), ("msg_id", 32), ("sig", 128)):
        v = fields.get(key)
        if isinstance(v, str) and (len(v) != digits or not _HEX.fullmatch(v)):
            raise Rejected("malformed", f"{key} must be {digits} lowercase hex digits")
    # 3. schema
    unknown = sorted(k for k in fields if k not in ENVELOPE_KEYS)
    if unknown:
        _fail(repr(unknown[0]), "is not an envelope field")
    v = fields.get("v")
    if v != VERSION or not isinstance(v, int) or isinstance(v, bool):
        _fail("v", "must be 1")
    sender = _str(fields, "from")
    hop_count = _uint(fields, "hop_count", U8_MAX)
    msg_id = _str(fields, "msg_id")
    node_id = _str(fields, "node_id")
    if "payload" not in fields:
        _fail("payload", "is missing")
    payload = fields["payload"]
    seq = _uint(fields, "seq", U64_MAX)
    sig = _str(fields, "sig")
    topic = _str(fields, "topic")
    ts = _uint(fields, "ts", U64_MAX)
    ttl = _uint(fields, "ttl", U32_MAX)
    type_ = _str(fields, "type")
    check_schema(type_, topic, node_id, payload)
    # 4.-7. hops, ttl, skew, expiry
    if hop_count > limits.max_hops:
        raise Rejected("hops", f"hop_count {hop_count} is above the limit {limits.max_hops}")
    if ttl > limits.max_ttl:
        raise Rejected("ttl", f"ttl {ttl} s is above the limit {limits.max_ttl} s")
    if ts > now + limits.max_clock_skew_ms:
        raise Rejected("skew", f"ts is {ts - now} ms in the future")
    if now > ts + ttl * 1000:
        raise Rejected("ttl", f"expired {now - ts - ttl * 1000} ms ago")
    # 8. signature
    env = Envelope(
        type=type_,
        topic=topic,
        node_id=node_id,
        sender=bytes.fromhex(sender),
        msg_id=msg_id,
        seq=seq,
        ts_ms=ts,
        ttl=ttl,
        hop_count=hop_count,
        payload=payload,
        signature=bytes.fromhex(sig),
    )
    try:
        VerifyKey(env.sender).verify(env.signed_bytes(), env.signature)
    except (BadSignatureError, ValueError) as e:
        raise Rejected("signature", f"the signature does not verify: {e}") from None
    return env


def forward_envelope(data: bytes, secret_key: bytes, limits: Limits | None = None, now_ms: int | None = None) -> bytes:
    limits = limits or Limits()
    key = _signing_key(secret_key)
    env = verify_envelope(data, limits, now_ms)
    if env.hop_count + 1 > limits.max_hops:
        raise Rejected("hops", f"hop_count {env.hop_count} has reached the limit {limits.max_hops}")
    fields = {k: v for k, v in env.__dict__.items() if k not in ("sender", "signature")}
    return _sign(key, **{**fields, "hop_count": env.hop_count + 1}).to_bytes()


def message_id(data: bytes) -> bytes:
    try:
        body = canonical_json(parse_strict(data))
    except Rejected:
        body = data
    return hashlib.blake2b(body, digest_size=32).digest()[:MESSAGE_ID_LEN]


# --- dedup --------------------------------------------------------------------------


class SeenCache:
    """Bounded, expiring seen-set: dict + heap of (expires, generation, key)."""

    def __init__(self, capacity: int, default_ttl: float) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not default_ttl >= 0:
            raise ValueError("default_ttl must be a non-negative number")
        self.capacity = capacity
        self.default_ttl = float(default_ttl)
        self._entries: dict[bytes, tuple[float, int]] = {}
        self._due: list[tuple[float, int, bytes]] = []
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._due.clear()

    def check_and_insert(self, key: str | bytes, ttl: float | None = None, now: float | None = None) -> bool:
        if ttl is not None and not ttl >= 0:
            raise ValueError("ttl must be a non-negative number")
        now = time.monotonic() if now is None else now
        return self.check_and_insert_until(key, now + (self.default_ttl if ttl is None else ttl), now)

    def check_and_insert_until(self, key: str | bytes, expires: float, now: float) -> bool:
        k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        held = self._entries.get(k)
        if held is not None and now <= held[0]:
            return False
        due = self._due
        while due and due[0][0] < now:  # drop the expired
            exp, gen, old = heapq.heappop(due)
            if self._entries.get(old, (None, None))[1] == gen:
                del self._entries[old]
        if k not in self._entries:
            while len(self._entries) >= self.capacity and due:  # evict the next to expire
                exp, gen, old = heapq.heappop(due)
                if self._entries.get(old, (None, None))[1] == gen:
                    del self._entries[old]
        self._generation += 1
        self._entries[k] = (expires, self._generation)
        heapq.heappush(due, (expires, self._generation, k))
        return True


def peer_id(public_key: bytes) -> bytes:
    """libp2p's peer id of an ed25519 key: identity multihash (0x00, length 36) of the
    protobuf PublicKey {Type: Ed25519 = 1, Data: the 32 key bytes}."""
    if len(public_key) != 32:
        raise ValueError("a public key is 32 bytes")
    return bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]) + public_key


class Gate:
    def __init__(self, limits: Limits | None = None, capacity: int = 100_000) -> None:
        self.limits = limits or Limits()
        self.seen = SeenCache(capacity, self.limits.max_ttl)

    def __len__(self) -> int:
        return len(self.seen)

    def admit(self, data: bytes, now_ms: int | None = None, *, source_peer: bytes | None = None) -> Envelope:
        now = clock_ms() if now_ms is None else now_ms
        env = verify_envelope(data, self.limits, now)
        if source_peer is not None and peer_id(env.sender) != source_peer:
            raise Rejected("source", "the signer is not the peer the message came from")
        if not self.seen.check_and_insert_until(env.msg_id, env.expires_at_ms / 1000, now / 1000):
            raise Rejected("duplicate", f"msg_id {env.msg_id} was already admitted")
        return env

    def admit_batch(self, items: list[bytes], now_ms: int | None = None) -> list[Envelope | Rejected]:
        out: list[Envelope | Rejected] = []
        for data in items:
            try:
                out.append(self.admit(data, now_ms))
            except Rejected as e:
                out.append(e)
        return out
