"""Typed stubs for `bzzz._core`, the Rust core (see rust/python/src/lib.rs)."""

from collections.abc import Iterable
from os import PathLike
from types import TracebackType
from typing import Any, final

__version__: str
__all__ = [
    "CoreError",
    "discovery_key",
    "Envelope",
    "EnvelopeRejected",
    "forward_envelope",
    "Gate",
    "KeyPair",
    "Limits",
    "LogCorrupted",
    "LogVerifier",
    "MerkleLog",
    "message_id",
    "peer_id",
    "Proof",
    "REJECT_REASONS",
    "Safeguards",
    "SeenCache",
    "sign_envelope",
    "VerificationFailed",
    "VerifiedTree",
    "verify_envelope",
    "__version__",
]

class CoreError(ValueError):
    """Bad input to the core: wrong key or signature length, index out of range, ..."""

class LogCorrupted(CoreError):
    """Stored log data failed its integrity checks on open or verify."""

class VerificationFailed(CoreError):
    """A proof, signature or tree hash did not verify against the public key."""

class EnvelopeRejected(CoreError):
    """An envelope was refused before any Python code acted on it."""

    reason: str
    """One of `REJECT_REASONS`."""

# --- log: begin ---
# Every MerkleLog method releases the GIL while it hashes, signs or touches the
# disk, and a MerkleLog may be shared between threads (calls are serialized).
# KeyPair, Proof, LogVerifier and VerifiedTree calls are short and keep the GIL.

_NodeTuple = tuple[int, int, bytes]
"""(flat-tree index, bytes below the node, BLAKE2b-256 hash)"""

@final
class KeyPair:
    """An ed25519 key pair; `secret_key` is libsodium's 64 bytes (seed || public key)."""

    @staticmethod
    def generate() -> KeyPair: ...
    @staticmethod
    def from_seed(seed: bytes) -> KeyPair:
        """Raises CoreError unless `seed` is 32 bytes."""
    @staticmethod
    def from_secret_key(secret_key: bytes) -> KeyPair:
        """Raises CoreError unless 64 bytes whose second half is the seed's public key."""
    @property
    def public_key(self) -> bytes: ...
    @property
    def secret_key(self) -> bytes: ...
    @property
    def seed(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes:
        """A detached 64-byte ed25519 signature."""

@final
class Proof:
    """Entry `index` of a log, proven against the signed tree of `length` entries.

    Shaped as hypercore's proof object (block + upgrade from 0), so
    `to_json()` is what a JS hypercore reader verifies.
    """

    def __new__(
        cls,
        *,
        index: int,
        value: bytes,
        nodes: list[_NodeTuple],
        length: int,
        roots: list[_NodeTuple],
        signature: bytes,
        fork: int = 0,
        manifest: bytes | None = None,
    ) -> Proof:
        """Raises CoreError if a node hash is not 32 bytes or `manifest` is not a default manifest."""
    @property
    def index(self) -> int: ...
    @property
    def value(self) -> bytes: ...
    @property
    def nodes(self) -> list[_NodeTuple]:
        """Siblings from the leaf up to (not including) the full root holding the entry."""
    @property
    def length(self) -> int: ...
    @property
    def roots(self) -> list[_NodeTuple]:
        """The other full roots of `length`, left to right."""
    @property
    def signature(self) -> bytes: ...
    @property
    def fork(self) -> int: ...
    @property
    def manifest(self) -> bytes | None:
        """The encoded default manifest (manifest mode); None in compat mode."""
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> Proof:
        """Raises CoreError on anything that is not a proof in hypercore's JSON shape."""

@final
class LogVerifier:
    """Checks a log's proofs and signatures knowing only its writer's public key."""

    def __new__(cls, public_key: bytes, *, compat: bool = False) -> LogVerifier:
        """Raises CoreError unless `public_key` is a valid 32-byte ed25519 key."""
    @property
    def key(self) -> bytes:
        """The log key it accepts proofs for (manifest hash, or the public key if compat)."""
    @property
    def public_key(self) -> bytes: ...
    @property
    def compat(self) -> bool: ...
    def verify_proof(self, proof: Proof) -> bytes:
        """The proven entry's value; raises VerificationFailed if anything does not check out."""
    def verify_tree(
        self, *, length: int, roots: list[_NodeTuple], signature: bytes, fork: int = 0, manifest: bytes | None = None
    ) -> VerifiedTree:
        """Check a writer's signed tree (every full root of `length`, in order) once; raises
        VerificationFailed if the roots or the signature do not check out."""
    def verify_signature(self, tree_hash: bytes, length: int, signature: bytes, fork: int = 0) -> bool:
        """`signature` in the form Hypercore stores it (68-byte multisig, or 64 bytes if compat)."""

@final
class VerifiedTree:
    """A writer's signed tree whose signature checked out: it proves any number of its
    entries by their Merkle nodes alone, with no signature check an entry."""

    def prove(self, index: int, value: bytes, nodes: list[_NodeTuple]) -> None:
        """Raises VerificationFailed unless entry `index` holds `value`, as `nodes` show."""
    @property
    def tree_hash(self) -> bytes: ...
    @property
    def length(self) -> int: ...
    @property
    def byte_length(self) -> int: ...
    @property
    def fork(self) -> int: ...

@final
class MerkleLog:
    """A single-writer, signed, append-only log on disk, hashed and signed as Hypercore 11 does:
    by default in its manifest mode (key = hash of a manifest naming the writer), or with
    `compat=True` in compat mode (key = the writer's public key).

    Opened with its key pair it signs its appends; without, it only reads. A replica
    (`create_replica`, `open_replica`) is a copy of someone else's log: it holds no secret
    key and grows only by `append_verified`, entries the writer's signature covers.

    Opening cuts a torn tail (a crash mid-append) back to the newest signed length
    and says so in `recovery`; damage anywhere else raises LogCorrupted.
    """

    @classmethod
    def create(
        cls, path: str | PathLike[str], key_pair: KeyPair, *, compat: bool = False, sync: bool = False
    ) -> MerkleLog:
        """A new empty log in directory `path`; FileExistsError if one is there.

        `sync=True` fsyncs every append (survives power loss); the default
        survives the process dying at any point.
        """
    @classmethod
    def open(cls, path: str | PathLike[str], key_pair: KeyPair | None = None, *, sync: bool = False) -> MerkleLog:
        """Open to append (with the key pair) or to read. FileNotFoundError if no log
        is there, CoreError for the wrong key pair, OSError if another writer holds it,
        LogCorrupted if no intact signed state is found."""
    @classmethod
    def create_replica(
        cls, path: str | PathLike[str], public_key: bytes, *, compat: bool = False, sync: bool = False
    ) -> MerkleLog:
        """A new, empty copy of someone else's log, to grow with append_verified; FileExistsError
        if one is there. `public_key` is the writer's, `compat` the writer's log's mode: its
        `key` is then the writer's log's `key`. CoreError for a public key that is not one."""
    @classmethod
    def open_replica(cls, path: str | PathLike[str], *, sync: bool = False) -> MerkleLog:
        """Open a copy to grow it (one process at a time: OSError if another holds it).
        A torn tail is cut back as `open` does; FileNotFoundError if no log is there."""
    def append(self, data: bytes) -> int:
        """Append and sign one entry; returns the new length."""
    def append_batch(self, entries: Iterable[bytes]) -> int:
        """Append entries under one signature; returns the new length. TypeError for non-bytes.
        CoreError for a replica or a log opened without its key pair."""
    def append_verified(self, entries: Iterable[bytes], signature: bytes) -> int:
        """Append entries a peer sent, if `signature` (as Hypercore stores it) is the writer's over the
        resulting tree; the new length. VerificationFailed, and nothing written, if it is not.
        CoreError for a log that is not a replica."""
    def get(self, index: int) -> bytes:
        """IndexError when out of range; LogCorrupted if the stored entry cannot be read."""
    def proof(self, index: int) -> Proof: ...
    def verify(self) -> None:
        """Re-hash every entry and node and check every stored signature.
        Raises LogCorrupted or VerificationFailed."""
    @property
    def length(self) -> int: ...
    @property
    def byte_length(self) -> int: ...
    @property
    def fork(self) -> int: ...
    @property
    def key(self) -> bytes:
        """The log's key: the manifest hash, or the writer's public key in compat mode."""
    @property
    def public_key(self) -> bytes: ...
    @property
    def compat(self) -> bool: ...
    @property
    def manifest(self) -> bytes | None:
        """Hypercore's compact encoding of the log's manifest; None in compat mode."""
    @property
    def discovery_key(self) -> bytes: ...
    @property
    def writable(self) -> bool:
        """Opened with its key pair, or as a replica."""
    @property
    def replica(self) -> bool:
        """Opened as a replica: grows by append_verified only."""
    @property
    def path(self) -> str: ...
    @property
    def recovery(self) -> str | None:
        """What opening had to cut off after a crash, if anything."""
    @property
    def closed(self) -> bool: ...
    def tree_hash(self) -> bytes: ...
    def signature(self) -> bytes | None:
        """The signature of the current length as Hypercore stores it (68-byte multisig,
        or 64 bytes in compat mode); None while the log is empty."""
    def roots(self) -> list[_NodeTuple]: ...
    def close(self) -> None:
        """Release the files and the writer's lock; later calls raise CoreError."""
    def __len__(self) -> int: ...
    def __enter__(self) -> MerkleLog: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

def discovery_key(key: bytes) -> bytes:
    """BLAKE2b-256 of b"hypercore" keyed with `key`; CoreError unless 32 bytes."""

# --- log: end ---

# --- envelope: begin ---
# Signed gossip envelopes and the seen cache. The specification (canonical
# encoding, schemas, check order) is the module doc of rust/core/src/envelope/mod.rs.
# sign_envelope, verify_envelope, forward_envelope, message_id, Gate.admit and
# Gate.admit_batch release the GIL for their hashing, signing and verifying;
# Envelope accessors, Limits, Safeguards, SeenCache and Gate.discussion calls
# are short and keep it. SeenCache and Gate may be shared between threads.

REJECT_REASONS: tuple[str, ...]
"""Every `EnvelopeRejected.reason`: size, malformed, schema, signature, source, hops, ttl, skew, duplicate,
then the safeguards' rate, closed, participants."""

@final
class Limits:
    """What a receiver accepts. Frozen; ints out of range raise OverflowError."""

    def __new__(
        cls, max_size: int = 65536, max_hops: int = 3, max_ttl: int = 3600, max_clock_skew_ms: int = 30000
    ) -> Limits: ...
    @property
    def max_size(self) -> int:
        """Largest envelope in bytes, checked before parsing."""
    @property
    def max_hops(self) -> int:
        """Largest hop_count accepted, and the most a relay forwards to."""
    @property
    def max_ttl(self) -> int:
        """Largest ttl in seconds."""
    @property
    def max_clock_skew_ms(self) -> int:
        """How far in the future ts may be."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Safeguards:
    """What a Gate allows one signer (`from`) and one discussion (`Envelope.discussion_key`):
    checks 11 to 13, after dedup. Frozen; CoreError for a sender_rate that is not a finite
    number above 0 or any other field below 1; ints out of range raise OverflowError."""

    def __new__(
        cls,
        sender_rate: float = 5.0,
        sender_burst: int = 20,
        max_participants: int = 16,
        discussion_ttl: int = 3600,
        max_discussion_messages: int = 500,
        capacity: int = 10000,
    ) -> Safeguards: ...
    @property
    def sender_rate(self) -> float:
        """Sustained messages per second per signer: its token bucket's refill."""
    @property
    def sender_burst(self) -> int:
        """Most messages a signer may send at once: its bucket's size (a new signer starts full)."""
    @property
    def max_participants(self) -> int:
        """Most distinct signers in one discussion."""
    @property
    def discussion_ttl(self) -> int:
        """Seconds a discussion stays open after it opened (at min(ts, now) of its first message)."""
    @property
    def max_discussion_messages(self) -> int:
        """Most messages admitted into one discussion."""
    @property
    def capacity(self) -> int:
        """Most signers, and most discussions, a gate remembers (each)."""
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Envelope:
    """A signed envelope that passed every check. Frozen; equal when all fields are."""

    @property
    def type(self) -> str:
        """capabilities | task_help_request | task_help_response | meta_msg | escalation"""
    @property
    def topic(self) -> str: ...
    @property
    def node_id(self) -> str:
        """The origin agent."""
    @property
    def sender(self) -> bytes:
        """The signer's 32-byte ed25519 public key: the origin, or the last relay."""
    @property
    def msg_id(self) -> str:
        """32 lowercase hex digits, kept by relays; what dedup keys on."""
    @property
    def seq(self) -> int: ...
    @property
    def ts_ms(self) -> int:
        """Milliseconds since the Unix epoch at the origin."""
    @property
    def ttl(self) -> int:
        """Seconds the message stays valid after ts_ms."""
    @property
    def hop_count(self) -> int: ...
    @property
    def expires_at_ms(self) -> int:
        """ts_ms + ttl * 1000."""
    @property
    def payload(self) -> dict[str, Any]:
        """A new dict on every access (keys sorted)."""
    @property
    def signature(self) -> bytes:
        """64 bytes."""
    def to_bytes(self) -> bytes:
        """The canonical wire bytes."""
    def signed_bytes(self) -> bytes:
        """What the signature covers: b"bzzz/envelope/v1\n" + canonical JSON without "sig"."""
    def message_id(self) -> bytes:
        """`message_id(self.to_bytes())`."""
    @property
    def discussion_key(self) -> str | None:
        """The discussion the safeguards count it in: a meta_msg's topic, "help:" + request_id
        for a help request or response, None for capabilities and escalation."""
    def __eq__(self, other: object) -> bool: ...

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
    """Sign a new envelope; returns its canonical wire bytes. Releases the GIL while signing.

    `msg_id` defaults to 16 random bytes in hex, `ts_ms` to now. Payload values are
    dict (str keys), list, tuple, str, int, bool or None. Raises CoreError for a
    secret key that is not libsodium's 64 bytes; EnvelopeRejected('malformed') for
    a float, an int outside -2^63..2^64, a lone surrogate, nesting deeper than 32
    or a bad msg_id; EnvelopeRejected('schema') for a payload, type, topic or
    node_id a receiver would refuse; TypeError for other payload types;
    OverflowError for seq/ts_ms/ttl/hop_count out of u64/u64/u32/u8.
    """

def verify_envelope(data: bytes, limits: Limits | None = None, now_ms: int | None = None) -> Envelope:
    """Check one received envelope (size, parse, schema, hops, ttl, skew, signature,
    in that order) at `now_ms` (default: now). Releases the GIL.
    Raises EnvelopeRejected with `reason` set."""

def forward_envelope(data: bytes, secret_key: bytes, limits: Limits | None = None, now_ms: int | None = None) -> bytes:
    """Verify `data`, then re-sign it as the relay with hop_count + 1. Releases the GIL.
    Raises CoreError for a bad secret key, EnvelopeRejected as verify_envelope does,
    and EnvelopeRejected('hops') when hop_count + 1 would pass max_hops."""

def message_id(data: bytes) -> bytes:
    """The gossipsub message id: the first 20 bytes of BLAKE2b-256 of the canonical
    wire bytes (of the raw bytes when they are not accepted JSON). Never raises.
    Releases the GIL."""

def peer_id(public_key: bytes) -> bytes:
    """The libp2p peer id, in its binary multihash form, of a 32-byte ed25519 public key
    (what `Gate.admit(source_peer=...)` compares). CoreError for another length."""

@final
class SeenCache:
    """A bounded, expiring set of seen keys. Thread-safe; calls keep the GIL (they are short).

    At capacity the expired entries go first, then the one closest to expiry.
    `now` is seconds on any clock you use consistently; default time.monotonic().
    """

    def __new__(cls, capacity: int, default_ttl: float) -> SeenCache:
        """CoreError for capacity 0 or a negative or NaN default_ttl."""
    def check_and_insert(self, key: str | bytes, ttl: float | None = None, now: float | None = None) -> bool:
        """True the first time (the key is recorded for ttl seconds, default_ttl when
        None); False while a previous entry is live (now <= its expiry). str keys are
        their UTF-8 bytes. CoreError for a negative/NaN ttl or NaN now; TypeError for
        other key types."""
    def clear(self) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def default_ttl(self) -> float: ...
    def __len__(self) -> int:
        """Entries held, including expired ones not yet dropped."""

@final
class Gate:
    """The check every inbound message passes: verify_envelope, then dedup on msg_id
    (only after the signature verified; an entry lasts until the message expires),
    then the safeguards if it has them. Thread-safe."""

    def __new__(
        cls, limits: Limits | None = None, capacity: int = 100000, safeguards: Safeguards | None = None
    ) -> Gate:
        """CoreError for capacity 0. Without safeguards, no rate, closed or participants checks."""
    @property
    def limits(self) -> Limits: ...
    @property
    def capacity(self) -> int: ...
    @property
    def safeguards(self) -> Safeguards | None: ...
    def admit(self, data: bytes, now_ms: int | None = None, *, source_peer: bytes | None = None) -> Envelope:
        """Raises EnvelopeRejected (reason 'duplicate' for a msg_id already admitted).

        With `source_peer` (the binary libp2p peer id the network says the message came
        from), an authentic envelope signed by anyone else is refused as 'source', before
        it can claim its msg_id. With safeguards, then 'rate', 'closed' or 'participants';
        a message refused for those keeps its msg_id claimed. Releases the GIL."""
    def admit_batch(self, items: Iterable[bytes], now_ms: int | None = None) -> list[Envelope | EnvelopeRejected]:
        """admit() for each item, in order; refusals are returned, not raised.
        Verifies with the GIL released. TypeError if an item is not bytes."""
    def discussion(self, key: str, now_ms: int | None = None) -> dict[str, Any] | None:
        """{"opened_ms": int, "closes_ms": int, "messages": int, "participants": int, "closed": bool}
        as of `now_ms` (default: now), or None if unknown (or the gate has no safeguards).
        `key` is an `Envelope.discussion_key`."""
    def clear(self) -> None:
        """Forget every message id, signer and discussion."""
    def __len__(self) -> int:
        """Message ids held."""

# --- envelope: end ---
