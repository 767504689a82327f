"""What goes into a log entry, and how an entry reads back.

Agents log events as JSON objects with a `type` and a `ts` (milliseconds since
the epoch). Keys are sorted and whitespace dropped so the same event always
makes the same bytes, and so the same leaf hash. Entries that are not such JSON
(appended by hand, say) still read back, as text or as raw bytes.

Every entry a worker journals is made here, so this is where secrets are taken out: the log is
append-only and replicated, and an entry peers have copied can never be taken back. Every key and
value (recursively) goes through the process's `bzzz.redaction` registry before encoding.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bzzz.redaction import redact_value


def encode_event(event_type: str, /, **fields: Any) -> bytes:
    if not event_type:
        raise ValueError("an event needs a type")
    event = {"type": event_type, "ts": fields.pop("ts", None) or int(time.time() * 1000), **fields}
    event = redact_value(event)
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


def _when(ts: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000)) if isinstance(ts, int) else "-"


def describe_event(event: dict[str, Any]) -> str:
    """One line a person reads: when, what, and the fields that matter for that kind of event.
    HMMM messages read as who said what on which channel; other events as their fields."""
    kind = str(event.get("type", "?"))
    rest = {k: v for k, v in event.items() if k not in ("type", "ts", "agent", "node_id")}
    head = f"{_when(event.get('ts'))}  {kind:<16}"
    if kind == "hmmm_message":
        arrow = "→" if rest.get("direction") == "sent" else "←"
        said = rest.get("query_type") or rest.get("message_type")
        text = rest.get("text") or json.dumps(rest.get("payload", {}), ensure_ascii=False)
        return (
            f"{head} {arrow} {rest.get('from_node')} {said} on {rest.get('topic')} "
            f"(hop {rest.get('hop_count', 0)}): {str(text)[:300]}"
        )
    return f"{head} {json.dumps(rest, ensure_ascii=False)[:600]}"
