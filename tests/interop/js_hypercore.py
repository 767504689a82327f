"""Drive the real npm `hypercore` (pinned in tests/interop/js) from Python.

Each function runs one command of `js/hc.js` under Node: JSON in on stdin, JSON
out on stdout, byte strings as lowercase hex. Install the JS side once with

    cd tests/interop/js && npm ci

(`make test` and `make bench` do this for you).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
HC_JS = JS_DIR / "hc.js"
INSTALL_COMMAND = "cd tests/interop/js && npm ci"
TIMEOUT = 600  # seconds; generous for the benchmarks on small shared machines


class NodeNotFound(RuntimeError):
    """There is no `node` on PATH."""


class HypercoreNotInstalled(RuntimeError):
    """node_modules in tests/interop/js is missing: run INSTALL_COMMAND."""


class HcError(RuntimeError):
    """hc.js failed (a usage error or a crash), as opposed to rejecting a proof."""


def node_path() -> str | None:
    return shutil.which("node")


def check_installed() -> str:
    """The path of `node`, once the pinned hypercore is known to be installed."""
    node = node_path()
    if node is None:
        raise NodeNotFound("`node` (Node.js >= 20) is not on PATH; the hypercore interop tests need it")
    if not (JS_DIR / "node_modules" / "hypercore" / "package.json").is_file():
        raise HypercoreNotInstalled(
            f"npm hypercore is not installed in {JS_DIR / 'node_modules'}; run `{INSTALL_COMMAND}` "
            "(or `make test`, which does it)"
        )
    return node


def run(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run `node hc.js <command>` with `payload` on stdin and return its JSON answer."""
    node = check_installed()
    proc = subprocess.run(
        [node, str(HC_JS), command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=JS_DIR,
        timeout=TIMEOUT,
        check=False,
    )
    if proc.returncode != 0:
        raise HcError(f"node hc.js {command} exited {proc.returncode}: {proc.stderr.strip()}")
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError as err:
        raise HcError(f"node hc.js {command} printed something that is not JSON: {proc.stdout!r}") from err
    if not isinstance(result, dict):
        raise HcError(f"node hc.js {command} printed {result!r}, not a JSON object")
    return result


def build(seed: bytes, batches: list[list[bytes]], proofs: list[int], *, compat: bool = True) -> dict[str, Any]:
    """A fresh hypercore (key pair from `seed`), one `append` call per batch.

    `compat=True`: compat mode (key = public key, 64-byte signatures); `compat=False`:
    hypercore's default manifest mode (key = hash of the default signer manifest,
    68-byte multisig signatures).

    Returns key, discovery_key, public_key, compat (bool), manifest (hypercore's
    compact encoding, or None in compat mode), tree_hash, signature (bytes, as
    hypercore stores it), length, byte_length, fork (int), blocks (list of bytes)
    and proofs: for each index in `proofs`, hypercore's proof object for that block
    with an upgrade from 0 to the length, as a JSON-ready dict (hex strings), the
    same shape as `Proof.to_json()`; in manifest mode it carries the manifest
    object, as a replicating peer sends it.
    """
    return _built(run("build", _build_input(seed, batches, proofs, compat)))


def build_many(
    builds: list[tuple[bytes, list[list[bytes]], list[int]]], *, compat: bool = True
) -> list[dict[str, Any]]:
    """`build` for each (seed, batches, proofs), all in one Node process."""
    out = run("build-many", {"builds": [_build_input(seed, b, p, compat) for seed, b, p in builds]})
    return [_built(r) for r in out["results"]]


def _build_input(seed: bytes, batches: list[list[bytes]], proofs: list[int], compat: bool) -> dict[str, Any]:
    return {
        "seed": seed.hex(),
        "batches": [[e.hex() for e in batch] for batch in batches],
        "proofs": proofs,
        "compat": compat,
    }


def _built(out: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": bytes.fromhex(out["key"]),
        "discovery_key": bytes.fromhex(out["discoveryKey"]),
        "public_key": bytes.fromhex(out["publicKey"]),
        "compat": out["compat"],
        "manifest": None if out["manifest"] is None else bytes.fromhex(out["manifest"]),
        "length": out["length"],
        "byte_length": out["byteLength"],
        "tree_hash": bytes.fromhex(out["treeHash"]),
        "signature": bytes.fromhex(out["signature"]),
        "fork": out["fork"],
        "proofs": out["proofs"],
        "blocks": [bytes.fromhex(b) for b in out["blocks"]],
    }


def verify_proof(key: bytes, proof: dict[str, Any] | str) -> dict[str, Any]:
    """Have a fresh hypercore reader that knows only `key` verify and apply `proof`.

    `key` is the hypercore key: the public key in compat mode, the manifest hash in
    manifest mode (where the proof must carry the manifest).

    `proof` is a dict in hypercore's JSON shape or its JSON text (`Proof.to_json()`).
    Returns {"ok": True, "value": bytes, "length": int, "tree_hash": bytes} or
    {"ok": False, "error": str}.
    """
    if isinstance(proof, str):
        proof = json.loads(proof)
    return _verified(run("verify", {"key": key.hex(), "proof": proof}))


def verify_signature(
    public_key: bytes, tree_hash: bytes, length: int, signature: bytes, fork: int = 0, *, compat: bool = True
) -> bool:
    """Whether hypercore accepts `signature` (in its stored form) for the tree.

    compat: hypercore-crypto's ed25519 check of the 64 bytes over
    caps.treeSignableCompat(tree_hash, length, fork). Manifest mode: hypercore's own
    Verifier for the default signer manifest of `public_key`, on the 68-byte
    multisig (signature over caps.treeSignable(manifest hash, tree_hash, length, fork)).
    """
    out = run("verify-signature", _signature_check(public_key, tree_hash, length, signature, fork, compat))
    return bool(out["ok"])


def verify_signatures(checks: list[tuple[bytes, bytes, int, bytes, int, bool]]) -> list[bool]:
    """`verify_signature` for each (public_key, tree_hash, length, signature, fork, compat),
    all in one Node process."""
    out = run("verify-signatures", {"checks": [_signature_check(*check) for check in checks]})
    return [bool(r["ok"]) for r in out["results"]]


def _signature_check(
    public_key: bytes, tree_hash: bytes, length: int, signature: bytes, fork: int, compat: bool
) -> dict[str, Any]:
    return {
        "publicKey": public_key.hex(),
        "treeHash": tree_hash.hex(),
        "length": length,
        "fork": fork,
        "signature": signature.hex(),
        "compat": compat,
    }


def bench_append(count: int, size: int, batch: int = 1, *, compat: bool = True) -> dict[str, Any]:
    """Time `count` signed `core.append` calls of `batch` entries of `size` bytes, inside Node.

    `compat=False` times hypercore's default manifest mode (multisig signatures).
    Returns count, size, batch, compat, entries, seconds (Node start-up excluded),
    appends_per_sec (append calls per second) and entries_per_sec.
    """
    return run("bench-append", {"count": count, "size": size, "batch": batch, "compat": compat})


def verify_proofs(key: bytes, proofs: Sequence[dict[str, Any] | str]) -> list[dict[str, Any]]:
    """`verify_proof` for many proofs in one Node process, each by its own fresh reader."""
    decoded = [json.loads(p) if isinstance(p, str) else p for p in proofs]
    out = run("verify-many", {"key": key.hex(), "proofs": decoded})
    return [_verified(r) for r in out["results"]]


def _verified(out: dict[str, Any]) -> dict[str, Any]:
    if not out["ok"]:
        return {"ok": False, "error": out["error"]}
    return {
        "ok": True,
        "value": bytes.fromhex(out["value"]),
        "length": out["length"],
        "tree_hash": bytes.fromhex(out["treeHash"]),
    }
