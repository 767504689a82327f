"""Following the agents' logs: the mesh worker keeps a verified replica of each one; this reads
the replicas, read-only, and only what is new.

The mesh worker is asked once to follow a key (`MeshClient.replicate(key, follow=True)`); it
then keeps following it, across its own restarts (`<data_dir>/replicas/following.json`).
A replica grows only by entries the writer's signature covers (`bzzz.log.replica`), so what is
read from it is verified. Reading stats the replica's signature file first and opens the log
only when it changed; each look reads at most `batch` new entries of a log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from bzzz._core import LogVerifier, MerkleLog, Proof
from bzzz.paths import DataDir, merkle_dir

log = structlog.get_logger("bzzz.monitor")


class Mesh(Protocol):
    def replicate(
        self, key: str, peers: list[str] | None = None, *, follow: bool = False, timeout_s: float = 600.0
    ) -> dict[str, Any]: ...


@dataclass
class _Replica:
    stamp: tuple[int, int] | None = None
    length: int = 0


class LogFollower:
    def __init__(self, data_dir: Path, mesh: Mesh | None, *, retry_s: float = 5.0) -> None:
        self.data = DataDir(data_dir)
        self.mesh = mesh
        self.retry_s = retry_s
        self._next_ask: dict[str, float] = {}
        self._replicas: dict[str, _Replica] = {}

    def path(self, key: str) -> Path:
        return merkle_dir(self.data.replica(key))

    def following(self) -> set[str]:
        try:
            return set(json.loads(self.data.following.read_text()))
        except (OSError, ValueError):
            return set()

    def want(self, keys: list[str], beat: Callable[[], None] = lambda: None) -> None:
        """Make sure the mesh worker follows each of `keys` (asking again, now and then, until it does)."""
        if self.mesh is None:
            return
        followed = self.following()
        now = time.monotonic()
        for key in keys:
            if key in followed or now < self._next_ask.get(key, 0.0):
                continue
            self._next_ask[key] = now + self.retry_s
            try:
                self.mesh.replicate(key, follow=True, timeout_s=0.0)  # starts it; the mesh keeps at it
            except Exception as err:  # the mesh worker restarting, say: ask again later
                log.info("could not ask the mesh to follow a log", key=key[:16], error=str(err)[:200])
            beat()

    def changed(self, key: str) -> int | None:
        """The replica's length if it may have grown since `mark_read`, else None (a stat, no open)."""
        path = self.path(key)
        try:
            stat = (path / "signatures").stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        replica = self._replicas.setdefault(key, _Replica())
        if stamp == replica.stamp:
            return None
        try:
            with MerkleLog.open(path) as opened:
                replica.length = opened.length
        except (OSError, ValueError) as err:  # being created, or damaged: look again next time
            log.debug("cannot open a replica", key=key[:16], error=str(err)[:200])
            return None
        replica.stamp = stamp
        return replica.length

    def forget_stamp(self, key: str) -> None:
        """Look at `key` again next time even if its files did not change (more left to read)."""
        if key in self._replicas:
            self._replicas[key].stamp = None

    def read(self, key: str, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """Entries start..end-1 of the replica, one at a time (never a whole page of them held)."""
        with MerkleLog.open(self.path(key)) as opened:
            for index in range(start, min(end, opened.length)):
                yield index, opened.get(index)

    def length(self, key: str) -> int:
        try:
            with MerkleLog.open(self.path(key)) as opened:
                return opened.length
        except (OSError, ValueError):
            return 0

    def proof(self, key: str, index: int) -> dict[str, Any]:
        """Entry `index`'s Merkle proof and the signed head it is checked against, checked here
        with nothing but the writer's public key. IndexError past the end, FileNotFoundError
        for a log not held."""
        with MerkleLog.open(self.path(key)) as opened:
            made = opened.proof(index)
            public_key, compat = opened.public_key, opened.compat
        return {
            "key": key,
            "index": index,
            "public_key": public_key.hex(),
            **proof_view(made),
            **check(made, key, public_key, compat),
        }


def proof_view(proof: Proof) -> dict[str, Any]:
    return {
        "length": proof.length,
        "fork": proof.fork,
        "signature": proof.signature.hex(),
        "manifest": proof.manifest.hex() if proof.manifest is not None else None,
        "nodes": [{"index": i, "size": s, "hash": h.hex()} for i, s, h in proof.nodes],
        "roots": [{"index": i, "size": s, "hash": h.hex()} for i, s, h in proof.roots],
        "value_size": len(proof.value),
    }


def check(proof: Proof, key: str, public_key: bytes, compat: bool) -> dict[str, Any]:
    """Whether `proof` proves its entry in log `key` signed by `public_key`: {verified, why}."""
    try:
        verifier = LogVerifier(public_key, compat=compat)
        if verifier.key.hex() != key:
            return {"verified": False, "why": f"the writer's key makes log {verifier.key.hex()}, not {key}"}
        verifier.verify_proof(proof)
    except ValueError as err:  # CoreError, VerificationFailed
        return {"verified": False, "why": str(err)[:500]}
    return {
        "verified": True,
        "why": f"entry {proof.index} hashes up to the tree of {proof.length} entries its writer signed",
    }


__all__ = ["LogFollower", "check", "proof_view"]
