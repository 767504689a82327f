"""Byte compatibility with the real npm `hypercore` (11.37.1, pinned in tests/interop/js).

The same entries, appended in the same batches under the same key pair, go into
a JS hypercore and into the Rust `MerkleLog` (one signature per `append` call), in
both of hypercore's modes:

- manifest mode (hypercore's default and Bzzz's): key = hash of the default signer
  manifest, signatures over caps.treeSignable stored as 68-byte multisig;
- compat mode: key = public key, raw 64-byte signatures over caps.treeSignableCompat.

Keys, manifests, tree hashes, signatures and proofs must be identical, and each
side must accept the other's proofs and refuse them tampered.
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

from bzzz._core import (  # noqa: E402
    CoreError,
    KeyPair,
    LogVerifier,
    MerkleLog,
    Proof,
    VerificationFailed,
    discovery_key,
)

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


MODES = pytest.mark.parametrize("compat", [False, True], ids=["manifest", "compat"])

# JS verification costs a fresh reader (a RocksDB) per proof, about 10 ms; in manifest
# mode it runs on the named shapes and every 7th "length N" (compat mode keeps every
# shape). The Rust side verifies every proof of every shape in both modes.
JS_SUBSET_STEP = 7


def js_verifies_all_proofs_of(name: str, compat: bool) -> bool:
    if compat or not name.startswith("length "):
        return True
    return int(name.removeprefix("length ")) % JS_SUBSET_STEP == 0


@dataclass
class Built:
    """One shape built by both sides in one mode (the Rust log is closed again)."""

    name: str
    compat: bool
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

    @property
    def key(self) -> bytes:
        """The hypercore key, as JS hypercore made it."""
        key: bytes = self.js["key"]
        return key

    def verifier(self) -> LogVerifier:
        return LogVerifier(self.public_key, compat=self.compat)

    def js_verdicts_on_rust_proofs(self) -> list[dict[str, Any]]:
        if self._js_verdicts is None:
            self._js_verdicts = js.verify_proofs(self.key, self.rust_proofs)
        return self._js_verdicts


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bool], Built]:
    cache: dict[tuple[str, bool], Built] = {}

    def get(name: str, compat: bool) -> Built:
        if (name, compat) not in cache:
            # Every shape of the mode at once: Node's start-up costs more than a build.
            names = list(SHAPES)
            js_sides = js.build_many(
                [(seed_for(n), SHAPES[n], list(range(sum(len(b) for b in SHAPES[n])))) for n in names],
                compat=compat,
            )
            for n, js_side in zip(names, js_sides, strict=True):
                cache[(n, compat)] = build_rust(n, compat, js_side)
        return cache[(name, compat)]

    def build_rust(name: str, compat: bool, js_side: dict[str, Any]) -> Built:
        seed, batches = seed_for(name), SHAPES[name]
        path = tmp_path_factory.mktemp("rust") / "log"
        with MerkleLog.create(path, KeyPair.from_seed(seed), compat=compat) as log:
            for batch in batches:
                if len(batch) == 1:
                    log.append(batch[0])
                else:
                    log.append_batch(batch)
            rust = {
                "key": log.key,
                "discovery_key": log.discovery_key,
                "public_key": log.public_key,
                "compat": log.compat,
                "manifest": log.manifest,
                "length": log.length,
                "byte_length": log.byte_length,
                "tree_hash": log.tree_hash(),
                "signature": log.signature(),
                "fork": log.fork,
                "blocks": [log.get(i) for i in range(log.length)],
                "roots": log.roots(),
            }
            proofs = [log.proof(i).to_json() for i in range(log.length)]
        return Built(name, compat, seed, batches, js_side, rust, proofs)

    return get


ALL = pytest.mark.parametrize("name", list(SHAPES))

# The default signer manifest, as hypercore encodes it (lib/messages.js manifest,
# Verifier.defaultSignerManifest): version 1, flags 0, hash blake2b (0), quorum 1,
# one signer (ed25519 = 0), the namespace and the public key.
MANIFEST_PREFIX = bytes.fromhex("010000010100")
DEFAULT_NAMESPACE = bytes.fromhex("4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb")


def manifest_json(public_key: bytes) -> dict[str, Any]:
    return {
        "version": 1,
        "hash": "blake2b",
        "allowPatch": False,
        "quorum": 1,
        "signers": [{"signature": "ed25519", "namespace": DEFAULT_NAMESPACE.hex(), "publicKey": public_key.hex()}],
        "prologue": None,
        "linked": None,
        "userData": None,
    }


# --- same log, same bytes -----------------------------------------------------------


@MODES
@ALL
def test_key_discovery_key_manifest_length_tree_hash_and_signature_are_identical(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    fields = [
        "key",
        "discovery_key",
        "public_key",
        "compat",
        "manifest",
        "length",
        "byte_length",
        "tree_hash",
        "signature",
        "fork",
    ]
    assert {f: b.rust[f] for f in fields} == {f: b.js[f] for f in fields}
    assert b.js["compat"] is compat
    assert b.js["public_key"] == b.public_key
    assert b.js["length"] == len(b.entries)
    assert b.js["byte_length"] == sum(len(e) for e in b.entries)
    assert discovery_key(b.js["key"]) == b.js["discovery_key"]
    assert b.verifier().key == b.js["key"]
    if compat:
        assert b.js["key"] == b.public_key
        assert b.js["manifest"] is None
        assert len(b.js["signature"]) == 64
    else:
        assert b.js["key"] != b.public_key
        assert b.js["manifest"] == MANIFEST_PREFIX + DEFAULT_NAMESPACE + b.public_key
        # multisig.assemble of one proof: 1 proof, signer 0, the 64-byte ed25519
        # signature, patch 0; then 0 patch nodes.
        sig = b.js["signature"]
        assert (len(sig), sig[:2], sig[-2:]) == (68, b"\x01\x00", b"\x00\x00")


@MODES
@ALL
def test_both_sides_store_exactly_the_entries_appended(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    assert b.js["blocks"] == b.rust["blocks"] == b.entries


@MODES
@ALL
def test_rust_proofs_are_the_same_objects_as_js_hypercores_proofs(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    assert [json.loads(p) for p in b.rust_proofs] == b.js["proofs"]
    expected_manifest = None if compat else manifest_json(b.public_key)
    assert all(p["manifest"] == expected_manifest for p in b.js["proofs"])


@pytest.mark.parametrize(
    ("name", "compat"),
    [
        pytest.param(name, compat, id=f"{name}-{mode}")
        for compat, mode in [(False, "manifest"), (True, "compat")]
        for name in SHAPES
        if js_verifies_all_proofs_of(name, compat)
    ],
)
def test_every_rust_proof_is_accepted_by_js_hypercore_with_the_right_value(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    verdicts = b.js_verdicts_on_rust_proofs()
    assert len(verdicts) == len(b.entries)
    for i, verdict in enumerate(verdicts):
        assert verdict["ok"], f"proof of entry {i}: {verdict.get('error')}"
        assert verdict["value"] == b.entries[i]
        assert verdict["length"] == b.rust["length"]
        assert verdict["tree_hash"] == b.rust["tree_hash"]


@MODES
@ALL
def test_every_js_proof_is_accepted_by_the_rust_verifier_with_the_right_value(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    verifier = b.verifier()
    assert len(b.js["proofs"]) == len(b.entries)
    for i, proof in enumerate(b.js["proofs"]):
        parsed = Proof.from_json(json.dumps(proof))
        assert (parsed.index, parsed.length) == (i, len(b.entries))
        assert parsed.manifest == b.js["manifest"]
        assert json.loads(parsed.to_json()) == proof
        assert verifier.verify_proof(parsed) == b.entries[i]


NAMED = pytest.mark.parametrize("name", [n for n in SHAPES if not n.startswith("length ")])


# Each JS call here is a Node start-up, so this runs on the named shapes only (every
# length's signature is checked by JS anyway when it verifies that length's proofs).
@MODES
@NAMED
def test_the_signature_verifies_on_both_sides_and_not_for_another_length(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    pk, tree_hash, length, sig = b.public_key, b.rust["tree_hash"], b.rust["length"], b.rust["signature"]
    assert js.verify_signatures(
        [
            (pk, tree_hash, length, sig, 0, compat),
            (pk, tree_hash, length + 1, sig, 0, compat),
            (pk, tree_hash, length, sig, 1, compat),
            # Each mode's signature is refused in the other mode.
            (pk, tree_hash, length, sig, 0, not compat),
        ]
    ) == [True, False, False, False]
    assert b.verifier().verify_signature(b.js["tree_hash"], length, b.js["signature"])
    assert not b.verifier().verify_signature(b.js["tree_hash"], length + 1, b.js["signature"])
    assert not b.verifier().verify_signature(b.js["tree_hash"], length, b.js["signature"], fork=1)
    assert not LogVerifier(pk, compat=not compat).verify_signature(b.js["tree_hash"], length, b.js["signature"])


@MODES
def test_every_intermediate_rust_signature_verifies_in_js(tmp_path: Path, compat: bool) -> None:
    seed = seed_for("intermediate")
    checks = []
    with MerkleLog.create(tmp_path / "log", KeyPair.from_seed(seed), compat=compat) as log:
        for batch in SHAPES["mixed batches"] + SHAPES["length 11"]:
            length = log.append_batch(batch)
            signature = log.signature()
            assert signature is not None
            checks.append((log.public_key, log.tree_hash(), length, signature, 0, compat))
    assert js.verify_signatures(checks) == [True] * len(checks)


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
    # Inside the ed25519 signature in both forms (the multisig one starts at byte 2).
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
    return bool(p["upgrade"]["length"] > p["block"]["index"])


def _fork(p: dict[str, Any]) -> bool:
    p["fork"] = 1
    return True


def _manifest_public_key(p: dict[str, Any]) -> bool:
    if p["manifest"] is None:
        return False
    p["manifest"]["signers"][0]["publicKey"] = KeyPair.from_seed(seed_for("another key")).public_key.hex()
    return True


def _manifest_namespace(p: dict[str, Any]) -> bool:
    if p["manifest"] is None:
        return False
    signer = p["manifest"]["signers"][0]
    signer["namespace"] = flip(signer["namespace"], 5)
    return True


def _multisig_byte(at: int, xor: int = 0x01) -> Callable[[dict[str, Any]], bool]:
    """A byte of the multisig wrapper around the ed25519 signature (68 bytes:
    proof count, signer index, signature, patch length, patch node count)."""

    def how(p: dict[str, Any]) -> bool:
        sig = bytearray(bytes.fromhex(p["upgrade"]["signature"]))
        if len(sig) != 68:
            return False
        sig[at] ^= xor
        p["upgrade"]["signature"] = sig.hex()
        return True

    return how


def _multisig_unwrapped(p: dict[str, Any]) -> bool:
    """The bare 64-byte ed25519 signature in place of its multisig encoding."""
    sig = bytes.fromhex(p["upgrade"]["signature"])
    if len(sig) != 68:
        return False
    p["upgrade"]["signature"] = sig[2:66].hex()
    return True


def _multisig_truncated(p: dict[str, Any]) -> bool:
    sig = bytes.fromhex(p["upgrade"]["signature"])
    if len(sig) != 68:
        return False
    p["upgrade"]["signature"] = sig[:-1].hex()
    return True


def _manifest_dropped(p: dict[str, Any]) -> bool:
    if p["manifest"] is None:
        return False
    p["manifest"] = None
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
# Manifest mode only. Two changes to the multisig wrapper are left out because
# hypercore 11.37.1 itself accepts them (the Rust verifier refuses both): a byte
# appended (compact-encoding's c.decode ignores trailing data) and a nonzero patch
# length (byte 66; Verifier._verifyMulti ignores it unless the manifest allows patches).
MANIFEST_TAMPERINGS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "the manifest's public key": _manifest_public_key,
    "the manifest's namespace": _manifest_namespace,
    "the multisig proof count": _multisig_byte(0),
    "the multisig signer index": _multisig_byte(1),
    "the multisig patch node count": _multisig_byte(67),
    "the multisig wrapper removed": _multisig_unwrapped,
    "the multisig truncated": _multisig_truncated,
}
ALL_TAMPERINGS = TAMPERINGS | MANIFEST_TAMPERINGS
TAMPER_CASES = [pytest.param(False, how, id=f"manifest-{how}") for how in ALL_TAMPERINGS] + [
    pytest.param(True, how, id=f"compat-{how}") for how in TAMPERINGS
]


def tampered(
    proofs: list[dict[str, Any]], how: Callable[[dict[str, Any]], bool]
) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, proof in enumerate(proofs):
        p = copy.deepcopy(proof)
        if how(p):
            yield i, p


@pytest.mark.parametrize("name", TAMPER_SHAPES)
@pytest.mark.parametrize(("compat", "how"), TAMPER_CASES)
def test_a_tampered_rust_proof_is_rejected_by_js_hypercore(
    built: Callable[[str, bool], Built], name: str, compat: bool, how: str
) -> None:
    b = built(name, compat)
    cases = list(tampered([json.loads(p) for p in b.rust_proofs], ALL_TAMPERINGS[how]))
    assert cases, f"no proof in {name!r} to tamper with {how}"
    if how in MANIFEST_TAMPERINGS:
        # What these change is checked the same way for every proof of a log.
        cases = cases[:: max(1, len(cases) // 3)]
    verdicts = js.verify_proofs(b.key, [p for _, p in cases])
    for (i, _), verdict in zip(cases, verdicts, strict=True):
        assert not verdict["ok"], f"JS accepted the proof of entry {i} with {how} changed"


@pytest.mark.parametrize("name", TAMPER_SHAPES)
@pytest.mark.parametrize(("compat", "how"), TAMPER_CASES)
def test_a_tampered_js_proof_is_rejected_by_the_rust_verifier(
    built: Callable[[str, bool], Built], name: str, compat: bool, how: str
) -> None:
    b = built(name, compat)
    verifier = b.verifier()
    cases = list(tampered(b.js["proofs"], ALL_TAMPERINGS[how]))
    assert cases, f"no proof in {name!r} to tamper with {how}"
    for i, proof in cases:
        assert rust_rejects(verifier, proof), f"Rust accepted the proof of entry {i} with {how} changed"


def rust_rejects(verifier: LogVerifier, proof: dict[str, Any]) -> bool:
    """Whether the Rust side refuses `proof`: Proof.from_json refuses a manifest other
    than a default single-signer v1 one (CoreError), verify_proof anything else
    (VerificationFailed)."""
    try:
        parsed = Proof.from_json(json.dumps(proof))
    except CoreError:
        return True
    try:
        verifier.verify_proof(parsed)
    except VerificationFailed:
        return True
    return False


def test_without_its_manifest_a_proof_is_rejected_by_a_js_reader_that_knows_only_the_key(
    built: Callable[[str, bool], Built],
) -> None:
    """The manifest is what lets a key-only reader check a manifest-mode signature.
    (The Rust verifier is made from the public key, so it knows the manifest already.)"""
    b = built("mixed batches", False)
    cases = list(tampered([json.loads(p) for p in b.rust_proofs], _manifest_dropped))
    assert len(cases) == len(b.entries)
    for i, verdict in enumerate(js.verify_proofs(b.key, [p for _, p in cases])):
        assert not verdict["ok"], f"JS accepted the proof of entry {i} without its manifest"


def forged_leaf_with_honest_roots(b: Built, index: int) -> dict[str, Any]:
    """A proof of a made-up value for `index` whose upgrade carries the log's real roots
    (so the signature checks out) and whose block node is used by nothing."""
    forged: dict[str, Any] = copy.deepcopy(b.js["proofs"][index])
    forged["block"]["value"] = b"forged".hex()
    forged["block"]["nodes"] = []
    forged["upgrade"]["nodes"] = [{"index": i, "size": s, "hash": h.hex()} for i, s, h in b.rust["roots"]]
    return forged


@MODES
@pytest.mark.parametrize("name", ["length 11", "mixed batches"])
def test_a_value_not_tied_to_the_signed_roots_is_rejected_by_both(
    built: Callable[[str, bool], Built], name: str, compat: bool
) -> None:
    b = built(name, compat)
    forged = [forged_leaf_with_honest_roots(b, i) for i in range(len(b.entries))]
    for i, verdict in enumerate(js.verify_proofs(b.key, forged)):
        assert not verdict["ok"], f"JS accepted a forged value for entry {i}"
    verifier = b.verifier()
    for proof in forged:
        with pytest.raises(VerificationFailed):
            verifier.verify_proof(Proof.from_json(json.dumps(proof)))


@MODES
def test_a_proof_is_rejected_under_another_key_by_both(built: Callable[[str, bool], Built], compat: bool) -> None:
    b = built("mixed batches", compat)
    other = LogVerifier(KeyPair.from_seed(seed_for("another key")).public_key, compat=compat)
    assert not js.verify_proof(other.key, b.rust_proofs[5])["ok"]
    with pytest.raises(VerificationFailed):
        other.verify_proof(Proof.from_json(json.dumps(b.js["proofs"][5])))


def test_a_proof_is_rejected_in_the_other_mode_by_both(built: Callable[[str, bool], Built]) -> None:
    """Same writer, same entries: a compat proof does not pass for the manifest key, nor
    a manifest-mode proof for the public key."""
    for compat in (False, True):
        b = built("mixed batches", compat)
        other = LogVerifier(b.public_key, compat=not compat)
        assert other.key != b.key
        assert not js.verify_proof(other.key, b.rust_proofs[5])["ok"]
        with pytest.raises(VerificationFailed):
            other.verify_proof(Proof.from_json(json.dumps(b.js["proofs"][5])))
