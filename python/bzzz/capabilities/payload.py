"""The `capabilities` envelope payload: what an agent tells the mesh, fitted to the schema.

The schema is in the module doc of rust/core/src/envelope/mod.rs: the required fields, plus
`endpoints`, `cpu_count`, `memory_total_bytes`, `memory_available_bytes` and `gpus`. Integers
only. A model or tool name the schema would refuse (empty, over 256 UTF-8 bytes, not valid
Unicode) is left out with a warning rather than cut short: a truncated model name names a
model nobody has. Lists keep their first 256 names (sorted), and the whole payload is kept
under `PAYLOAD_MAX_BYTES` so that the signed envelope fits a receiver's default 64 KiB limit:
first the per-endpoint model lists go (the merged list still has every model), then names
from the end of `models` and `tools`, from whichever is larger at the time. Whatever is left
out is counted in `models_omitted` / `tools_omitted` (present only when not zero), and
warned about once.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from bzzz.capabilities.endpoints import Endpoint
from bzzz.capabilities.gpus import Gpu
from bzzz.capabilities.machine import UNKNOWN_VERSION
from bzzz.capabilities.schema import (
    I64_MAX,
    LIST_MAX,
    LOAD_PERMILLE_MAX,
    NAME_MAX_BYTES,
    U32_MAX,
    clamp,
    clip_utf8,
    is_utf8,
    valid_name,
)

__all__ = ["PAYLOAD_MAX_BYTES", "build"]

log = structlog.get_logger("bzzz.capabilities")

PAYLOAD_MAX_BYTES = 60 * 1024
"""Largest canonical payload `build()` makes by default: 64 KiB (what a receiver accepts by
default, `bzzz._core.Limits().max_size`) less 4 KiB for the envelope's own fields."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


def build(
    *,
    node_id: str,
    peer_id: str,
    log_key_hex: str,
    active_tasks: int,
    max_tasks: int,
    models: Iterable[str],
    tools: Iterable[str],
    endpoints: Sequence[Endpoint],
    gpus: Sequence[Gpu],
    load_permille: int,
    version: str,
    cpu_count: int,
    memory_total_bytes: int,
    memory_available_bytes: int,
    max_bytes: int = PAYLOAD_MAX_BYTES,
) -> dict[str, Any]:
    """The payload, valid under the core's schema (module doc).

    Raises ValueError for arguments the schema would refuse (an empty or over-long id, a log
    key that is not 64 lowercase hex digits, counts outside u32) and for a `max_bytes` too
    small for the required fields; detected data never makes it raise.
    """
    _require_id("node_id", node_id)
    _require_id("peer_id", peer_id)
    if not isinstance(log_key_hex, str) or not _HEX64.fullmatch(log_key_hex):
        raise ValueError("log_key_hex must be 64 lowercase hex digits")
    _require_u32("active_tasks", active_tasks)
    _require_u32("max_tasks", max_tasks)

    model_names = _advertised_names("model", models)
    tool_names = _advertised_names("tool", tools)
    body: dict[str, Any] = {
        "node_id": node_id,
        "peer_id": peer_id,
        "models": model_names[:LIST_MAX],
        "tools": tool_names[:LIST_MAX],
        "load_permille": clamp(load_permille, 0, LOAD_PERMILLE_MAX),
        "active_tasks": active_tasks,
        "max_tasks": max_tasks,
        "log_key": log_key_hex,
        "version": version if valid_name(version) else UNKNOWN_VERSION,
        "endpoints": [
            {"url": e.url, "reachable": bool(e.reachable), "models": _advertised_names("model", e.models)[:LIST_MAX]}
            for e in endpoints[:LIST_MAX]
            if is_utf8(e.url)
        ],
        "cpu_count": clamp(cpu_count, 0, I64_MAX),
        "memory_total_bytes": clamp(memory_total_bytes, 0, I64_MAX),
        "memory_available_bytes": clamp(memory_available_bytes, 0, I64_MAX),
        "gpus": [_gpu_payload(g) for g in gpus[:LIST_MAX] if is_utf8(g.name)],
    }
    omitted = {"models": len(model_names) - len(body["models"]), "tools": len(tool_names) - len(body["tools"])}
    _fit(body, omitted, max_bytes)
    for kind, count in omitted.items():
        if count:
            body[f"{kind}_omitted"] = count
    if any(omitted.values()):
        _warn_once(
            ("omitted", omitted["models"], omitted["tools"]),
            "capabilities payload leaves names out",
            models_omitted=omitted["models"],
            tools_omitted=omitted["tools"],
        )
    return body


def _gpu_payload(gpu: Gpu) -> dict[str, Any]:
    out: dict[str, Any] = {"name": clip_utf8(gpu.name, NAME_MAX_BYTES)}
    if isinstance(gpu.memory_bytes, int) and not isinstance(gpu.memory_bytes, bool):
        out["memory_bytes"] = clamp(gpu.memory_bytes, 0, I64_MAX)
    return out


def _canonical_size(value: Any) -> int:
    """Bytes of `value` in the envelope's canonical encoding (see the core's module doc)."""
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())


def _fit(body: dict[str, Any], omitted: dict[str, int], max_bytes: int) -> None:
    """Shrink `body` in place until it and its omitted counts fit `max_bytes`.

    First the per-endpoint model lists (the merged `models` still names every model), then
    names from the end of `models` and `tools` (from the larger of the two first), then GPUs,
    then endpoints.
    """

    def size() -> int:
        counts = {f"{kind}_omitted": n for kind, n in omitted.items() if n}
        return _canonical_size({**body, **counts})

    while (over := size() - max_bytes) > 0:
        listed = [e for e in body["endpoints"] if e.get("models")]
        if listed:
            for entry in listed:
                entry["models_omitted"] = len(entry["models"])
                entry["models"] = []
            continue
        if body["models"] or body["tools"]:
            # From whichever of the two lists is larger at the moment, so that neither is
            # emptied to keep the other whole.
            sizes = {key: _canonical_size(body[key]) for key in ("models", "tools")}
            freed = 0
            while freed < over and (body["models"] or body["tools"]):
                key = max(("models", "tools"), key=lambda k: sizes[k] if body[k] else -1)
                cost = _canonical_size(body[key].pop()) + 1
                sizes[key] -= cost
                freed += cost
                omitted[key] += 1
            continue
        for key in ("gpus", "endpoints"):
            if body[key]:
                body[key].pop()
                break
        else:
            raise ValueError(f"max_bytes={max_bytes} is too small for the required payload fields")


def _require_id(field: str, value: object) -> None:
    if not valid_name(value):
        raise ValueError(f"{field} must be a string of 1..={NAME_MAX_BYTES} UTF-8 bytes")


def _require_u32(field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U32_MAX:
        raise ValueError(f"{field} must be an integer in 0..={U32_MAX}")


def _advertised_names(kind: str, names: Iterable[str]) -> list[str]:
    """`names` sorted and unique, without those the schema refuses (each warned about once)."""
    out: set[str] = set()
    for name in names:
        if valid_name(name):
            out.add(name)
        else:
            shown = repr(name)
            _warn_once(
                ("name", kind, shown),
                f"{kind} name left out of the capabilities payload",
                name=shown if len(shown) <= 80 else shown[:77] + "...",
                reason=f"not 1..={NAME_MAX_BYTES} bytes of valid UTF-8",
            )
    return sorted(out)


_warned: set[tuple[object, ...]] = set()
_warned_lock = threading.Lock()
_WARNED_MAX = 1024


def _warn_once(key: tuple[object, ...], event: str, **fields: Any) -> None:
    """Warn about `key` once per process: payloads are rebuilt every few seconds."""
    with _warned_lock:
        if key in _warned:
            return
        if len(_warned) >= _WARNED_MAX:
            _warned.clear()
        _warned.add(key)
    log.warning(event, **fields)
