"""The one cap on peer text: every string that came from a peer or a log (node ids, model names,
entry text, messages) passes `cap` before the model keeps it or the API sends it."""

from __future__ import annotations

from typing import Any


def cap(text: str, max_bytes: int) -> tuple[str, bool]:
    """`text` cut to at most `max_bytes` of UTF-8 at a character boundary; whether it was cut."""
    if len(text) * 4 <= max_bytes:  # cannot be over: skip encoding the common short string
        return text, False
    encoded = text.encode("utf-8", errors="replace")
    if len(encoded) <= max_bytes:
        return text, False
    return encoded[:max_bytes].decode("utf-8", errors="ignore"), True


def capped(value: Any, max_bytes: int) -> str:
    """`value` as text (None: empty), capped; for fields where the cut is not reported."""
    return cap("" if value is None else value if isinstance(value, str) else str(value), max_bytes)[0]


def capped_list(values: Any, max_bytes: int, max_items: int = 256) -> list[str]:
    """A peer's list of names: strings only, at most `max_items`, each capped."""
    if not isinstance(values, list):
        return []
    return [capped(v, max_bytes) for v in values[:max_items] if isinstance(v, str)]


def as_int(value: Any, default: int = 0) -> int:
    """A peer's number, or `default` for anything else (a bool is not a number here)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default
