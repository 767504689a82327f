"""Copies of other agents' logs, verified with nothing but the writer's public key.

```
<data_dir>/replicas/<log key hex>/
    hypercore/      a replica MerkleLog: grows only by entries the writer's signature covers
    staging.sqlite  entries received and proven one by one, not yet appended (resume from here)
```

How entries get in (`Replica.take`): a peer sends its signed head (length, signature, roots) and
entries, each with its Merkle nodes up to a root of that head. The head is checked once
(`LogVerifier.verify_tree`: its roots are those of its length, signed by the writer); each entry
is then proven on arrival by hashing it up to one of those roots (a wrong entry or a bad proof is
caught at once, with its index), and staged durably; once the staged entries reach the head's
length, they are appended with
`MerkleLog.append_verified`, which checks the writer's signature over the whole resulting tree:
entries that belong to a different history (a fork signed by the same writer) fail there, and
nothing is written. A staged run that does not get appended is thrown away; the log itself is
never touched by anything that did not verify. A transfer cut short leaves its verified entries
staged, so the next one fetches only what is missing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bzzz._core import CoreError, LogVerifier, MerkleLog, VerificationFailed, VerifiedTree
from bzzz.paths import DataDir, merkle_dir

_NodeTuple = tuple[int, int, bytes]


class ReplicationRefused(Exception):
    """A peer sent something that does not verify; `what` names the check."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what


@dataclass(frozen=True)
class Head:
    """A writer's signed state, as a peer reports it."""

    public_key: bytes
    compat: bool
    length: int
    fork: int
    signature: bytes
    roots: list[_NodeTuple]
    manifest: bytes | None


def held_keys(data_dir: Path) -> list[str]:
    """The log keys (hex) this agent holds replicas of."""
    root = DataDir(data_dir).replicas
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (merkle_dir(p) / "header").exists())


class Replica:
    """This agent's copy of the log with key `key`; one writer (process) at a time."""

    def __init__(self, data_dir: Path, key: bytes) -> None:
        self.key = key
        self.directory = DataDir(data_dir).replica(key.hex())
        self.log: MerkleLog | None = None
        self.verifier: LogVerifier | None = None
        self._staging: sqlite3.Connection | None = None

    # --- opening ----------------------------------------------------------------------

    def open(self, head: Head | None = None) -> Replica:
        """Open the copy to grow it; creating it needs the writer's `head` (its public key)."""
        path = merkle_dir(self.directory)
        if (path / "header").exists():
            self.log = MerkleLog.open_replica(path)
        elif head is None:
            raise FileNotFoundError(f"no replica of {self.key.hex()} here yet")
        else:
            self.verifier = self._verifier_for(head)
            self.directory.mkdir(parents=True, exist_ok=True)
            self.log = MerkleLog.create_replica(path, head.public_key, compat=head.compat)
        if self.verifier is None:
            self.verifier = LogVerifier(self.log.public_key, compat=self.log.compat)
        # Used from the mesh's worker threads one call at a time (the node serializes transfers of a log).
        self._staging = sqlite3.connect(
            self.directory / "staging.sqlite", isolation_level=None, check_same_thread=False
        )
        self._staging.execute("PRAGMA journal_mode=WAL")
        self._staging.execute("CREATE TABLE IF NOT EXISTS staged (idx INTEGER PRIMARY KEY, value BLOB NOT NULL)")
        # Entries at or below the log's length were appended after staging (a crash before the
        # clean-up): they are in the log now.
        self._staging.execute("DELETE FROM staged WHERE idx < ?", (self.log.length,))
        return self

    def _verifier_for(self, head: Head) -> LogVerifier:
        try:
            verifier = LogVerifier(head.public_key, compat=head.compat)
        except CoreError as err:
            raise ReplicationRefused("head", f"not a public key: {err}") from None
        if verifier.key != self.key:
            raise ReplicationRefused("head", f"the peer's log is {verifier.key.hex()}, not {self.key.hex()}")
        return verifier

    def close(self) -> None:
        if self._staging is not None:
            self._staging.close()
            self._staging = None
        if self.log is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- state ------------------------------------------------------------------------

    @property
    def length(self) -> int:
        assert self.log is not None
        return self.log.length

    @property
    def staged_to(self) -> int:
        """The next index wanted: the log's length plus the contiguous run staged after it."""
        assert self.log is not None and self._staging is not None
        want = self.log.length
        for (idx,) in self._staging.execute("SELECT idx FROM staged WHERE idx >= ? ORDER BY idx", (want,)):
            if idx != want:
                break
            want += 1
        return want

    # --- growing ----------------------------------------------------------------------

    def check_head(self, head: Head) -> VerifiedTree | None:
        """The head's signed tree, to `take` entries against (None: the log is empty). A head must
        be of this log and signed by its writer; one of our own length must be our tree (else: a fork)."""
        assert self.log is not None and self.verifier is not None
        self._verifier_for(head)
        if head.length == 0:
            return None
        try:
            tree = self.verifier.verify_tree(
                length=head.length, roots=head.roots, signature=head.signature, fork=head.fork, manifest=head.manifest
            )
        except (CoreError, VerificationFailed) as err:
            raise ReplicationRefused("head", f"the peer's signed head does not verify: {err}") from None
        if head.length == self.log.length and tree.tree_hash != self.log.tree_hash():
            raise ReplicationRefused("fork", f"the peer's signed tree of length {head.length} is not ours")
        return tree

    def take(self, tree: VerifiedTree | None, entries: Sequence[tuple[int, bytes, list[_NodeTuple]]]) -> None:
        """Prove each entry against `tree` (from `check_head`) and stage it. ReplicationRefused at
        the first that does not verify (the entries before it stay staged)."""
        assert self._staging is not None
        proven: list[tuple[int, bytes]] = []
        try:
            for index, value, nodes in entries:
                self._prove(tree, index, value, nodes)
                proven.append((index, value))
        finally:  # what verified is kept, in one transaction (not one fsync an entry)
            self._staging.execute("BEGIN")
            self._staging.executemany("INSERT OR REPLACE INTO staged (idx, value) VALUES (?, ?)", proven)
            self._staging.execute("COMMIT")

    @staticmethod
    def _prove(tree: VerifiedTree | None, index: int, value: bytes, nodes: list[_NodeTuple]) -> None:
        length = tree.length if tree is not None else 0
        if tree is None or not 0 <= index < length:
            raise ReplicationRefused("range", f"entry {index} is outside the peer's head of {length}")
        try:
            tree.prove(index, value, nodes)
        except (CoreError, VerificationFailed) as err:
            raise ReplicationRefused("proof", f"entry {index}: {err}") from None

    def commit(self, head: Head) -> int:
        """Append the staged run up to `head.length` under its signature; the new length. On a
        signature that does not cover our history plus the staged run, nothing is appended, the
        staged run is dropped, and ReplicationRefused('fork') says so."""
        assert self.log is not None and self._staging is not None
        start = self.log.length
        if head.length <= start:
            return start
        values = [
            v
            for (v,) in self._staging.execute(
                "SELECT value FROM staged WHERE idx >= ? AND idx < ? ORDER BY idx", (start, head.length)
            )
        ]
        if len(values) != head.length - start:
            return start  # not all there yet
        try:
            length = self.log.append_verified(values, head.signature)
        except VerificationFailed as err:
            self._staging.execute("DELETE FROM staged WHERE idx >= ?", (start,))
            raise ReplicationRefused(
                "fork", f"entries {start}..{head.length - 1} do not extend this log: {err}"
            ) from None
        self._staging.execute("DELETE FROM staged WHERE idx < ?", (length,))
        return length
