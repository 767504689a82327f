"""What the envelope schema accepts in a `capabilities` payload: names, lists and numbers.

The schema itself is the core's (module doc of rust/core/src/envelope/mod.rs); these are the
limits this package keeps to when it builds a payload or reads its configuration.
"""

from __future__ import annotations

__all__ = [
    "I64_MAX",
    "LIST_MAX",
    "LOAD_PERMILLE_MAX",
    "NAME_MAX_BYTES",
    "U32_MAX",
    "clamp",
    "clip_utf8",
    "is_utf8",
    "valid_name",
]

NAME_MAX_BYTES = 256
"""A model or tool name, and an id string (node_id, version), in UTF-8 bytes: the envelope schema's limit."""

LIST_MAX = 256
"""Most items in a payload list: the envelope schema's limit."""

LOAD_PERMILLE_MAX = 100_000
"""The schema's ceiling on `load_permille` (a load of 100 per CPU)."""

U32_MAX = 2**32 - 1
I64_MAX = 2**63 - 1


def is_utf8(text: str) -> bool:
    """False for strings holding lone surrogates, which JSON cannot carry as Unicode scalars."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def valid_name(value: object) -> bool:
    """A name or id string the envelope schema accepts: 1..=256 UTF-8 bytes of valid Unicode."""
    if not isinstance(value, str) or not is_utf8(value):
        return False
    return 1 <= len(value.encode("utf-8")) <= NAME_MAX_BYTES


def clip_utf8(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 at a character boundary (for free-text labels only)."""
    encoded = text.encode("utf-8", errors="replace")
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


def clamp(value: int, low: int, high: int) -> int:
    return min(max(int(value), low), high)
