"""Typed stubs for `bzzz._core`, the Rust core (see rust/python/src/lib.rs)."""

from collections.abc import Iterable
from os import PathLike
from types import TracebackType
from typing import final

__version__: str
__all__ = [
    "CoreError",
    "EnvelopeRejected",
    "KeyPair",
    "LogCorrupted",
    "LogVerifier",
    "MerkleLog",
    "Proof",
    "VerificationFailed",
    "__version__",
    "discovery_key",
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
# KeyPair, Proof and LogVerifier calls are short and keep the GIL.


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
    ) -> Proof:
        """Raises CoreError if a node hash is not 32 bytes."""
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
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(text: str) -> Proof:
        """Raises CoreError on anything that is not a proof in hypercore's JSON shape."""

@final
class LogVerifier:
    """Checks a log's proofs and signatures knowing only its public key."""

    def __new__(cls, public_key: bytes) -> LogVerifier:
        """Raises CoreError unless `public_key` is a valid 32-byte ed25519 key."""
    @property
    def key(self) -> bytes: ...
    def verify_proof(self, proof: Proof) -> bytes:
        """The proven entry's value; raises VerificationFailed if anything does not check out."""
    def verify_signature(self, tree_hash: bytes, length: int, signature: bytes, fork: int = 0) -> bool: ...

@final
class MerkleLog:
    """A single-writer, signed, append-only log on disk, hashed and signed as Hypercore 11 does.

    Opening cuts a torn tail (a crash mid-append) back to the newest signed length
    and says so in `recovery`; damage anywhere else raises LogCorrupted.
    """

    @classmethod
    def create(cls, path: str | PathLike[str], key_pair: KeyPair, *, sync: bool = False) -> MerkleLog:
        """A new empty log in directory `path`; FileExistsError if one is there.

        `sync=True` fsyncs every append (survives power loss); the default
        survives the process dying at any point.
        """
    @classmethod
    def open(
        cls, path: str | PathLike[str], key_pair: KeyPair | None = None, *, sync: bool = False
    ) -> MerkleLog:
        """Open to append (with the key pair) or to read. FileNotFoundError if no log
        is there, CoreError for the wrong key pair, OSError if another writer holds it,
        LogCorrupted if no intact signed state is found."""
    def append(self, data: bytes) -> int:
        """Append and sign one entry; returns the new length."""
    def append_batch(self, entries: Iterable[bytes]) -> int:
        """Append entries under one signature; returns the new length. TypeError for non-bytes."""
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
        """The log's key: its writer's public key (Hypercore compat mode)."""
    @property
    def discovery_key(self) -> bytes: ...
    @property
    def writable(self) -> bool: ...
    @property
    def path(self) -> str: ...
    @property
    def recovery(self) -> str | None:
        """What opening had to cut off after a crash, if anything."""
    @property
    def closed(self) -> bool: ...
    def tree_hash(self) -> bytes: ...
    def signature(self) -> bytes | None:
        """The signature of the current length; None while the log is empty."""
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
# --- envelope: end ---
