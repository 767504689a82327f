"""Byte compatibility with the real npm `hypercore` (11.37.1, pinned in tests/interop/js).

The same entries, appended in the same batches under the same key pair, go into
a JS hypercore (compat mode: key = public key, one signature per `append` call)
and into the Rust `MerkleLog`; keys, tree hashes, signatures and proofs must be
identical, and each side must accept the other's proofs and refuse them tampered.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.interop import js_hypercore as js

if js.node_path() is None:
    pytest.skip("`node` is not on PATH; the hypercore interop tests need Node.js >= 20", allow_module_level=True)

from bzzz._core import KeyPair, LogVerifier, MerkleLog, Proof, VerificationFailed, discovery_key  # noqa: E402

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module", autouse=True)
def hypercore_installed() -> None:
    """A missing node_modules is an error (not a skip): it says how to install."""
    js.check_installed()


# --- the logs both sides build ------------------------------------------------------


def entries(n: int, start: int = 0) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(start, start + n)]


def big(i: int) -> bytes:
    return hashlib.shake_256(b"big entry %d" % i).digest(64 * 1024)


def chunked(items: list[bytes], sizes: list[int]) -> list[list[bytes]]:
    """Split `items` into batches whose sizes cycle through `sizes`."""
    batches, i, k = [], 0, 0
    while i < len(items):
        size = sizes[k % len(sizes)]
        batches.append(items[i : i + size])
        i, k = i + size, k + 1
    return batches


SHAPES: dict[str, list[list[bytes]]] = {
    "one entry": [[b"hello"]],
    "single appends": [[e] for e in entries(13)],
    "one big batch": [entries(33)],
    "mixed batches": [entries(3), entries(1, 3), entries(17, 4), [b""], entries(2, 21)],
    "empty entries": [[b"", b"", b""], [b""], [b"x", b""]],
    "only empty entries": [[b""], [b"", b""]],
    "1-byte entries": [[bytes([i])] for i in range(7)] + [[bytes([i]) for i in range(7, 12)]],
    "64 KiB entries": [[big(0)], [big(1), big(2)], [b"small"], [big(3)]],
}
# Every length from 1 to 70, so every tree shape up to 64 + 4 + 2 leaves occurs, with
# the batch sizes rotating so that signatures land on different lengths.
BATCH_SIZES = [1, 2, 3, 1, 5, 8, 1, 13]
for _n in range(1, 71):
    _rot = _n % len(BATCH_SIZES)
    SHAPES[f"length {_n}"] = chunked(entries(_n), BATCH_SIZES[_rot:] + BATCH_SIZES[:_rot])


def seed_for(name: str) -> bytes:
    return hashlib.sha256(b"bzzz hypercore interop " + name.encode()).digest()


@dataclass
class Built:
    """One shape built by both sides (the Rust log is closed again)."""

    name: str
    seed: bytes
    batches: list[list[bytes]]
    js: dict[str, Any]
    rust: dict[str, Any]
    rust_proofs: list[str]  # Proof.to_json() for every index
    _js_verdicts: list[dict[str, Any]] | None = None

    @property
    def entries(self) -> list[bytes]:
        return [e for batch in self.batches for e in batch]

    @property
    def public_key(self) -> bytes:
        return KeyPair.from_seed(self.seed).public_key

    def js_verdicts_on_rust_proofs(self) -> list[dict[str, Any]]:
        if self._js_verdicts is None:
            self._js_verdicts = js.verify_proofs(self.public_key, self.rust_proofs)
        return self._js_verdicts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Built]:
    cache: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in cache:
            seed, batches = seed_for(name), SHAPES[name]
            total = sum(len(b) for b in batches)
            js_side = js.build(seed, batches, proofs=list(range(total)))
            path = tmp_path_factory.mktemp("rust") / "log"
            with MerkleLog.create(path, KeyPair.from_seed(seed)) as log:
                for batch in batches:
                    if len(batch) == 1:
                        log.append(batch[0])
                    else:
                        log.append_batch(batch)
                rust = {
                    "key": log.key,
                    "discovery_key": log.discovery_key,
                    "length": log.length,
                    "byte_length": log.byte_length,
                    "tree_hash": log.tree_hash(),
                    "signature": log.signature(),
                    "fork": log.fork,
                    "blocks": [log.get(i) for i in range(log.length)],
                    "roots": log.roots(),
                }
                proofs = [log.proof(i).to_json() for i in range(log.length)]
            cache[name] = Built(name, seed, batches, js_side, rust, proofs)
        return cache[name]

    return get


ALL = pytest.mark.parametrize("name", list(SHAPES))


# --- same log, same bytes -----------------------------------------------------------


@ALL
def test_key_discovery_key_length_byte_length_tree_hash_and_signature_are_identical(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    fields = ["key", "discovery_key", "length", "byte_length", "tree_hash", "signature", "fork"]
    assert {f: b.rust[f] for f in fields} == {f: b.js[f] for f in fields}
    assert b.js["key"] == b.public_key
    assert b.js["length"] == len(b.entries)
    assert b.js["byte_length"] == sum(len(e) for e in b.entries)
    assert discovery_key(b.js["key"]) == b.js["discovery_key"]
    assert len(b.js["signature"]) == 64


@ALL
def test_both_sides_store_exactly_the_entries_appended(built: Callable[[str], Built], name: str) -> None:
    b = built(name)
    assert b.js["blocks"] == b.rust["blocks"] == b.entries


@ALL
def test_rust_proofs_are_the_same_objects_as_js_hypercores_proofs(built: Callable[[str], Built], name: str) -> None:
    b = built(name)
    assert [json.loads(p) for p in b.rust_proofs] == b.js["proofs"]


@ALL
def test_every_rust_proof_is_accepted_by_js_hypercore_with_the_right_value(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    verdicts = b.js_verdicts_on_rust_proofs()
    assert len(verdicts) == len(b.entries)
    for i, verdict in enumerate(verdicts):
        assert verdict["ok"], f"proof of entry {i}: {verdict.get('error')}"
        assert verdict["value"] == b.entries[i]
        assert verdict["length"] == b.rust["length"]
        assert verdict["tree_hash"] == b.rust["tree_hash"]


@ALL
def test_every_js_proof_is_accepted_by_the_rust_verifier_with_the_right_value(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    verifier = LogVerifier(b.js["key"])
    assert len(b.js["proofs"]) == len(b.entries)
    for i, proof in enumerate(b.js["proofs"]):
        parsed = Proof.from_json(json.dumps(proof))
        assert (parsed.index, parsed.length) == (i, len(b.entries))
        assert verifier.verify_proof(parsed) == b.entries[i]


NAMED = pytest.mark.parametrize("name", [n for n in SHAPES if not n.startswith("length ")])


# Each JS call here is a Node start-up, so this runs on the named shapes only (every
# length's signature is checked by JS anyway when it verifies that length's proofs).
@NAMED
def test_the_signature_verifies_on_both_sides_and_not_for_another_length(
    built: Callable[[str], Built], name: str
) -> None:
    b = built(name)
    key, tree_hash, length = b.public_key, b.rust["tree_hash"], b.rust["length"]
    assert js.verify_signature(key, tree_hash, length, b.rust["signature"])
    assert LogVerifier(key).verify_signature(b.js["tree_hash"], length, b.js["signature"])
    assert not js.verify_signature(key, tree_hash, length + 1, b.rust["signature"])
    assert not LogVerifier(key).verify_signature(b.js["tree_hash"], length, b.js["signature"], fork=1)


def test_every_intermediate_rust_signature_verifies_in_js(tmp_path: Path) -> None:
    seed = seed_for("intermediate")
    with MerkleLog.create(tmp_path / "log", KeyPair.from_seed(seed)) as log:
        for batch in SHAPES["mixed batches"] + SHAPES["length 11"]:
            length = log.append_batch(batch)
            signature = log.signature()
            assert signature is not None
            assert js.verify_signature(log.key, log.tree_hash(), length, signature)


# --- tampering ----------------------------------------------------------------------

# Shapes whose proofs have block nodes and other roots, with no empty entries.
TAMPER_SHAPES = ["length 11", "length 23", "mixed batches", "64 KiB entries"]


def flip(hex_bytes: str, at: int = 0) -> str:
    raw = bytearray(bytes.fromhex(hex_bytes))
    raw[at % len(raw)] ^= 0x01
    return raw.hex()


def _value(p: dict[str, Any]) -> bool:
    if not p["block"]["value"]:
        return False
    p["block"]["value"] = flip(p["block"]["value"], len(p["block"]["value"]) // 4)
    return True


def _block_node(p: dict[str, Any]) -> bool:
    if not p["block"]["nodes"]:
        return False
    node = p["block"]["nodes"][-1]
    node["hash"] = flip(node["hash"], 17)
    return True


def _root(p: dict[str, Any]) -> bool:
    if not p["upgrade"]["nodes"]:
        return False
    node = p["upgrade"]["nodes"][0]
    node["hash"] = flip(node["hash"], 31)
    return True


def _signature(p: dict[str, Any]) -> bool:
    p["upgrade"]["signature"] = flip(p["upgrade"]["signature"], 40)
    return True


def _node_size(p: dict[str, Any]) -> bool:
    nodes = p["block"]["nodes"] or p["upgrade"]["nodes"]
    if not nodes:
        return False
    nodes[0]["size"] += 1
    return True


def _length(p: dict[str, Any]) -> bool:
    p["upgrade"]["length"] -= 1
    return p["upgrade"]["length"] > p["block"]["index"]


def _fork(p: dict[str, Any]) -> bool:
    p["fork"] = 1
    return True


TAMPERINGS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "one byte of the value": _value,
    "one byte of a block node hash": _block_node,
    "one byte of a root hash": _root,
    "one byte of the signature": _signature,
    "a node size": _node_size,
    "the length": _length,
    "the fork": _fork,
}


def tampered(proofs: list[dict[str, Any]], how: Callable[[dict[str, Any]], bool]) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, proof in enumerate(proofs):
        p = copy.deepcopy(proof)
        if how(p):
            yield i, p


@pytest.mark.parametrize("name", TAMPER_SHAPES)
@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_rust_proof_is_rejected_by_js_hypercore(built: Callable[[str], Built], name: str, how: str) -> None:
    b = built(name)
    cases = list(tampered([json.loads(p) for p in b.rust_proofs], TAMPERINGS[how]))
    assert cases, f"no proof in {name!r} to tamper with {how}"
    verdicts = js.verify_proofs(b.public_key, [p for _, p in cases])
    for (i, _), verdict in zip(cases, verdicts, strict=True):
        assert not verdict["ok"], f"JS accepted the proof of entry {i} with {how} changed"


@pytest.mark.parametrize("name", TAMPER_SHAPES)
@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_js_proof_is_rejected_by_the_rust_verifier(built: Callable[[str], Built], name: str, how: str) -> None:
    b = built(name)
    verifier = LogVerifier(b.public_key)
    cases = list(tampered(b.js["proofs"], TAMPERINGS[how]))
    assert cases, f"no proof in {name!r} to tamper with {how}"
    for i, proof in cases:
        with pytest.raises(VerificationFailed):
            verifier.verify_proof(Proof.from_json(json.dumps(proof)))
            pytest.fail(f"Rust accepted the proof of entry {i} with {how} changed")


def forged_leaf_with_honest_roots(b: Built, index: int) -> dict[str, Any]:
    """A proof of a made-up value for `index` whose upgrade carries the log's real roots
    (so the signature checks out) and whose block node is used by nothing."""
    forged = copy.deepcopy(b.js["proofs"][index])
    forged["block"]["value"] = b"forged".hex()
    forged["block"]["nodes"] = []
    forged["upgrade"]["nodes"] = [{"index": i, "size": s, "hash": h.hex()} for i, s, h in b.rust["roots"]]
    return forged


@pytest.mark.parametrize("name", ["length 11", "mixed batches"])
def test_a_value_not_tied_to_the_signed_roots_is_rejected_by_both(built: Callable[[str], Built], name: str) -> None:
    b = built(name)
    forged = [forged_leaf_with_honest_roots(b, i) for i in range(len(b.entries))]
    for i, verdict in enumerate(js.verify_proofs(b.public_key, forged)):
        assert not verdict["ok"], f"JS accepted a forged value for entry {i}"
    verifier = LogVerifier(b.public_key)
    for proof in forged:
        with pytest.raises(VerificationFailed):
            verifier.verify_proof(Proof.from_json(json.dumps(proof)))


def test_a_proof_is_rejected_under_another_key_by_both(built: Callable[[str], Built]) -> None:
    b = built("mixed batches")
    other = KeyPair.from_seed(seed_for("another key")).public_key
    assert not js.verify_proof(other, b.rust_proofs[5])["ok"]
    with pytest.raises(VerificationFailed):
        LogVerifier(other).verify_proof(Proof.from_json(json.dumps(b.js["proofs"][5])))
