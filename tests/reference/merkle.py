"""A pure-Python Hypercore-style signed Merkle log (hashlib + PyNaCl).

Written from hypercore-crypto and hypercore's lib/caps.js independently of the
Rust core, to cross-check it and to be the benchmark baseline. It keeps the
same on-disk work as the Rust log (entry data, tree nodes, one signature record
per append), so benchmarks compare like with like.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey


def _h(*parts: bytes) -> bytes:
    state = hashlib.blake2b(digest_size=32)
    for part in parts:
        state.update(part)
    return state.digest()


def _u64(n: int) -> bytes:
    return struct.pack("<Q", n)


def _namespace(i: int) -> bytes:
    return _h(_h(b"hypercore"), bytes([i]))


TREE = _namespace(0)
MANIFEST = _namespace(3)
DEFAULT_NAMESPACE = _namespace(4)


def leaf_hash(data: bytes) -> bytes:
    return _h(b"\x00", _u64(len(data)), data)


def parent_hash(left: bytes, right: bytes, size: int) -> bytes:
    return _h(b"\x01", _u64(size), left, right)


@dataclass(frozen=True)
class Node:
    index: int
    size: int
    hash: bytes


def tree_hash(roots: list[Node]) -> bytes:
    return _h(b"\x02", *(r.hash + _u64(r.index) + _u64(r.size) for r in roots))


def discovery_key(key: bytes) -> bytes:
    return hashlib.blake2b(b"hypercore", key=key, digest_size=32).digest()


def default_manifest(public_key: bytes) -> bytes:
    """compact-encoding of {version 1, flags 0, blake2b, quorum 1, [ed25519 signer]}."""
    return bytes([1, 0, 0, 1, 1, 0]) + DEFAULT_NAMESPACE + public_key


def manifest_hash(manifest: bytes) -> bytes:
    return _h(MANIFEST, manifest)


def tree_signable(hash_: bytes, length: int, fork: int = 0, manifest_hash_: bytes | None = None) -> bytes:
    """treeSignable (manifest mode) when `manifest_hash_` is given, else treeSignableCompat."""
    if manifest_hash_ is None:
        return TREE + hash_ + _u64(length) + _u64(fork)
    return TREE + manifest_hash_ + hash_ + _u64(length) + _u64(fork)


def multisig(signature: bytes) -> bytes:
    return bytes([1, 0]) + signature + bytes([0, 0])


def _depth(index: int) -> int:
    depth = 0
    while index & 1:
        index >>= 1
        depth += 1
    return depth


def _sibling(index: int) -> int:
    depth = _depth(index)
    offset = index >> (depth + 1)
    return ((offset ^ 1) << (depth + 1)) | ((1 << depth) - 1)


def _parent(index: int) -> int:
    depth = _depth(index)
    offset = index >> (depth + 1)
    return ((offset >> 1) << (depth + 2)) | ((1 << (depth + 1)) - 1)


def verify_signature(
    public_key: bytes, hash_: bytes, length: int, signature: bytes, fork: int = 0, *, compat: bool = False
) -> bool:
    """`signature` as Hypercore stores it: multisig-wrapped unless compat."""
    if not compat:
        if len(signature) != 68 or signature[:2] != b"\x01\x00" or signature[66:] != b"\x00\x00":
            return False
        signature = signature[2:66]
    if len(signature) != 64:
        return False
    mh = None if compat else manifest_hash(default_manifest(public_key))
    try:
        VerifyKey(public_key).verify(tree_signable(hash_, length, fork, mh), signature)
    except BadSignatureError:
        return False
    return True


class ReferenceLog:
    """Single-writer signed log; files as the Rust log's (no crash recovery)."""

    def __init__(self, seed: bytes, directory: Path | None = None, *, compat: bool = False) -> None:
        self._key = SigningKey(seed)
        self.public_key = bytes(self._key.verify_key)
        self.compat = compat
        self.manifest_hash = None if compat else manifest_hash(default_manifest(self.public_key))
        self.key = self.public_key if compat else self.manifest_hash
        self.roots: list[Node] = []
        self.length = 0
        self.byte_length = 0
        self.signature: bytes | None = None
        self._files = None
        if directory is not None:
            directory.mkdir(parents=True)
            self._files = tuple(
                os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o644) for name in ("data", "tree", "signatures")
            )
            self._records = 0

    def _push_leaf(self, data: bytes, created: list[Node]) -> None:
        top = Node(2 * self.length, len(data), leaf_hash(data))
        self.length += 1
        self.byte_length += len(data)
        created.append(top)
        while self.roots and self.roots[-1].index == _sibling(top.index):
            left = self.roots.pop()
            size = left.size + top.size
            top = Node(_parent(left.index), size, parent_hash(left.hash, top.hash, size))
            created.append(top)
        self.roots.append(top)

    def append_batch(self, entries: list[bytes]) -> int:
        offset = self.byte_length
        created: list[Node] = []
        for entry in entries:
            self._push_leaf(entry, created)
        hash_ = tree_hash(self.roots)
        raw = self._key.sign(tree_signable(hash_, self.length, 0, self.manifest_hash)).signature
        self.signature = raw if self.compat else multisig(raw)
        if self._files is not None:
            data, tree, sigs = self._files
            os.pwrite(data, b"".join(entries), offset)
            for node in created:
                os.pwrite(tree, node.hash + _u64(node.size), 40 * node.index)
            record = _u64(self.length) + _u64(self.byte_length) + _u64(0) + hash_ + raw
            os.pwrite(sigs, record, 120 * self._records)
            self._records += 1
        return self.length

    def append(self, entry: bytes) -> int:
        return self.append_batch([entry])

    def tree_hash(self) -> bytes:
        return tree_hash(self.roots)

    def close(self) -> None:
        for fd in self._files or ():
            os.close(fd)
        self._files = None
