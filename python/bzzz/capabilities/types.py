"""What an agent has: `Capabilities` (compared with what a task needs) and `Detected` (the whole
of what detection found, which the mesh advertises).

`Capabilities` is models, tools and languages, kept stripped and case-folded (models keep
their tags). It is a view of `Detected`: the mesh worker advertises a `Detected`'s models and
tools (`bzzz.capabilities.advertised`), and the github worker takes those, with the
languages it is configured with, as the `Capabilities` it claims with.

`Detected` adds where things are and the machine: per-endpoint models and reachability, tool
paths, CPUs, memory, GPUs, load, `max_tasks` and the version.

### Changed or not: `Detected.fingerprint()`

The broadcaster sends on every period and *also* as soon as something changes. What counts
as a change is what a peer would schedule differently on: models, per-endpoint models and
reachability, tool names, GPUs, `max_tasks`, CPU count, total memory and version. Load and
available memory move all the time and ride along on the periodic broadcast instead; they
are not in the fingerprint. `==` on two `Detected` compares every field, load included.
Active tasks are not detected at all (the executor knows them; `payload` takes them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from bzzz.capabilities.endpoints import Endpoint
from bzzz.capabilities.gpus import Gpu
from bzzz.capabilities.names import name_set, satisfied
from bzzz.capabilities.payload import PAYLOAD_MAX_BYTES
from bzzz.capabilities.payload import build as build_payload

__all__ = ["Capabilities", "Detected"]


@dataclass(frozen=True, init=False)
class Capabilities:
    """What this agent has. Names are kept stripped and case-folded; models keep their tags.

    A bare string is refused (TypeError: a collection was meant), and so is an empty name
    (ValueError).
    """

    models: frozenset[str]
    tools: frozenset[str]
    languages: frozenset[str]

    def __init__(self, models: Iterable[str] = (), tools: Iterable[str] = (), languages: Iterable[str] = ()) -> None:
        object.__setattr__(self, "models", name_set("models", models))
        object.__setattr__(self, "tools", name_set("tools", tools))
        object.__setattr__(self, "languages", name_set("languages", languages))

    def has_model(self, need: str) -> bool:
        """True if some model here meets `need` (`bzzz.capabilities.names`: any tag of it, if it names none)."""
        return satisfied(need, self.models)


class Detected(msgspec.Struct, frozen=True, kw_only=True):
    """What detection found on this machine, at one moment. Sequences are tuples, so the value is hashable."""

    models: tuple[str, ...]
    endpoints: tuple[Endpoint, ...]
    tools: tuple[str, ...]
    tool_paths: tuple[tuple[str, str], ...]  # (name, resolved path), sorted by name; never advertised
    cpu_count: int
    memory_total_bytes: int
    memory_available_bytes: int
    gpus: tuple[Gpu, ...]
    load_permille: int
    max_tasks: int
    version: str

    def tool_path(self, name: str) -> str | None:
        """Where the tool `name` was found, or None."""
        return dict(self.tool_paths).get(name)

    def fingerprint(self) -> str:
        """32 hex digits that change when a peer would schedule differently (see the module doc).

        Load and available memory are left out: they change on every call.
        """
        stable = {
            "models": self.models,
            "endpoints": [[e.url, e.reachable, e.models] for e in self.endpoints],
            "tools": self.tools,
            "gpus": [[g.name, g.memory_bytes] for g in self.gpus],
            "max_tasks": self.max_tasks,
            "cpu_count": self.cpu_count,
            "memory_total_bytes": self.memory_total_bytes,
            "version": self.version,
        }
        encoded = json.dumps(stable, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        return hashlib.blake2b(encoded, digest_size=16).hexdigest()

    def payload(
        self,
        *,
        node_id: str,
        peer_id: str,
        log_key_hex: str,
        active_tasks: int,
        max_tasks: int | None = None,
        max_bytes: int = PAYLOAD_MAX_BYTES,
    ) -> dict[str, Any]:
        """The `capabilities` envelope payload (`bzzz.capabilities.payload.build`).

        `max_tasks` defaults to the configured one this value was detected with.
        """
        return build_payload(
            node_id=node_id,
            peer_id=peer_id,
            log_key_hex=log_key_hex,
            active_tasks=active_tasks,
            max_tasks=self.max_tasks if max_tasks is None else max_tasks,
            models=self.models,
            tools=self.tools,
            endpoints=self.endpoints,
            gpus=self.gpus,
            load_permille=self.load_permille,
            version=self.version,
            cpu_count=self.cpu_count,
            memory_total_bytes=self.memory_total_bytes,
            memory_available_bytes=self.memory_available_bytes,
            max_bytes=max_bytes,
        )
