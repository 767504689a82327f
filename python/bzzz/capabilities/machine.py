"""This machine: tools on PATH, CPUs, memory, load, and the installed bzzz version.

Each never raises: a lookup that fails counts as "not found", psutil failing (no /proc) as
zero memory and no load; what went wrong is logged in one line (`describe`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Callable, Iterable
from typing import TypeAlias

import psutil  # type: ignore[import-untyped]  # psutil ships no type information
import structlog

from bzzz.capabilities.schema import LOAD_PERMILLE_MAX, clamp, valid_name

__all__ = ["UNKNOWN_VERSION", "Which", "bzzz_version", "describe", "find_tools", "load_permille", "memory_and_cpus"]

log = structlog.get_logger("bzzz.capabilities")

Which: TypeAlias = Callable[[str], str | None]
"""Where a command is, or None: `shutil.which`, or one bound to another PATH."""

UNKNOWN_VERSION = "0+unknown"

_ERROR_MAX_CHARS = 200


def describe(exc: BaseException) -> str:
    """An exception in one short line, for logs and an endpoint's `error`."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _ERROR_MAX_CHARS else text[: _ERROR_MAX_CHARS - 3] + "..."


def find_tools(names: Iterable[str], which: Which) -> tuple[tuple[str, str], ...]:
    """(name, resolved path) of each of `names` that `which` finds, sorted by name."""
    found: dict[str, str] = {}
    for name in names:
        try:
            path = which(name)
        except Exception as exc:  # an injected lookup that fails counts as "not found"
            log.debug("tool lookup failed", tool=name, error=describe(exc))
            path = None
        if path:
            found[name] = str(path)
    return tuple(sorted(found.items()))


def memory_and_cpus() -> tuple[int, int, int]:
    """(logical CPUs, total memory, available memory). psutil failing (no /proc) is not fatal."""
    try:
        cpu_count = int(psutil.cpu_count(logical=True) or 0)
    except Exception:
        cpu_count = 0
    cpu_count = cpu_count or os.cpu_count() or 1
    try:
        memory = psutil.virtual_memory()
        total, available = int(memory.total), int(memory.available)
    except Exception as exc:
        log.warning("memory not readable", error=describe(exc))
        total = available = 0
    return cpu_count, total, available


def load_permille(cpu_count: int) -> int:
    """The 1-minute load average per logical CPU, times 1000, clamped to the schema's 0..=100000."""
    try:
        load1 = float(psutil.getloadavg()[0])
    except Exception:
        return 0
    if load1 != load1:  # NaN
        return 0
    return clamp(round(load1 / max(cpu_count, 1) * 1000), 0, LOAD_PERMILLE_MAX)


@functools.cache
def bzzz_version() -> str:
    """The installed bzzz distribution's version, or `0+unknown` (running from a bare source tree)."""
    try:
        version = importlib.metadata.version("bzzz")
    except importlib.metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
    return version if valid_name(version) else UNKNOWN_VERSION
