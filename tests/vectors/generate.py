"""Write hypercore-11.json: known-answer vectors made by npm hypercore 11.37.1 itself.

`cargo test` checks the Rust log against them without Node (rust/core/tests/hypercore_vectors.rs);
tests/interop/test_vectors_are_current.py checks they are still what hypercore makes.

    .venv/bin/python -m tests.vectors.generate
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.interop import js_hypercore

OUT = Path(__file__).with_name("hypercore-11.json")

SHAPES: dict[str, list[list[bytes]]] = {
    "one entry": [[b"hello"]],
    "single appends": [[f"entry {i}".encode()] for i in range(7)],
    "one batch of 11": [[f"entry {i}".encode() for i in range(11)]],
    "mixed batches with empty entries": [[b"a", b""], [b"bb"], [b"", b"ccc", b"dddd", b"e"]],
    "a 3 KiB entry": [[b"x" * 3072], [b"y"]],
}


def cases() -> list[dict[str, Any]]:
    out = []
    for compat in (False, True):
        for name, batches in SHAPES.items():
            seed = hashlib.sha256(name.encode()).digest()
            length = sum(map(len, batches))
            raw = js_hypercore.run(
                "build",
                {
                    "seed": seed.hex(),
                    "batches": [[e.hex() for e in b] for b in batches],
                    "proofs": [length // 2],
                    "compat": compat,
                },
            )
            out.append(
                {
                    "name": name,
                    "compat": compat,
                    "seed": seed.hex(),
                    "batches": [[e.hex() for e in b] for b in batches],
                    **{
                        k: raw[k]
                        for k in (
                            "key",
                            "discoveryKey",
                            "publicKey",
                            "manifest",
                            "treeHash",
                            "signature",
                            "length",
                            "byteLength",
                            "fork",
                        )
                    },
                    "proof": raw["proofs"][0],
                }
            )
    return out


def main() -> None:
    OUT.write_text(json.dumps({"hypercore": "11.37.1", "cases": cases()}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
