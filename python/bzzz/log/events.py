"""What goes into a log entry, and how an entry reads back.

Agents log events as JSON objects with a `type` and a `ts` (milliseconds since
the epoch). Keys are sorted and whitespace dropped so the same event always
makes the same bytes, and so the same leaf hash. Entries that are not such JSON
(appended by hand, say) still read back, as text or as raw bytes.
"""

from __future__ import annotations

import json
import time
from typing import Any


def encode_event(event_type: str, /, **fields: Any) -> bytes:
    if not event_type:
        raise ValueError("an event needs a type")
    event = {"type": event_type, "ts": fields.pop("ts", None) or int(time.time() * 1000), **fields}
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_entry(entry: bytes) -> dict[str, Any] | str | bytes:
    """A dict for JSON objects, str for other UTF-8 text, the bytes otherwise."""
    try:
        text = entry.decode()
    except UnicodeDecodeError:
        return entry
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict) else text
