"""A worker's journal: how every worker writes to the agent's signed log, with one durability rule.

    journal.record(kind, fields)  ->  encode_event (redacted)  ->  the worker's outbox (SQLite)
                                  ->  delivered to the log service now, if it answers
    journal.deliver()             ->  whatever is still waiting, oldest first (call it from the loop)

An entry is durable before anything is attempted: if the log worker is down, or this worker is
killed right after `record`, the entry waits in the outbox and reaches the log exactly once
later (its request id is stable across restarts; the log service deduplicates). The fields pass
`bzzz.redaction` in `encode_event`, so no secret of this agent reaches a log peers copy forever.

When the log does not answer, `record` stops trying at once for a while (entries keep going to
the outbox): a worker's loop must not stall a second per entry on a log worker that is being
restarted. A journal may be shared by threads (a task thread records while the main loop
delivers): one delivery at a time, so each `record` learns where its own entry went.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import structlog

from bzzz.bus import Client
from bzzz.log.events import encode_event
from bzzz.log.service import SERVICE, AppendResult, append_request
from bzzz.state import OutboxItem, WorkerState
from bzzz.state.outbox import deliver

log = structlog.get_logger("bzzz.log.journal")

_result = msgspec.msgpack.Decoder(AppendResult)
QUIET_AFTER_FAILURE_S = 2.0  # how long `record` leaves delivery to `deliver` after the log did not answer


class Journal:
    """Entries about what this worker did, signed into the agent's log: `record(kind, fields)`."""

    def __init__(
        self, state: WorkerState, run_dir: Path, *, sender: str, agent: str, node_id: str, timeout_s: float = 1.0
    ) -> None:
        self.state, self.agent, self.node_id = state, agent, node_id
        self.client = Client(run_dir, sender=sender, timeout_s=timeout_s, retries=0)
        self._quiet_until = 0.0
        self._delivering = threading.Lock()

    def record(self, kind: str, fields: dict[str, Any]) -> int | None:
        """Journal one entry; its index in the log if it is there already, else None (it will be)."""
        entry = encode_event(kind, agent=self.agent, node_id=self.node_id, **fields)
        item = self.state.put(SERVICE, append_request([entry]), key=f"{kind}:{os.urandom(8).hex()}")
        if time.monotonic() < self._quiet_until:
            return None
        indexes = self._deliver(limit=50)
        return indexes.get(item)

    __call__ = record

    def deliver(self, limit: int = 50) -> int:
        """Send what waits in the outbox (oldest first); how many entries reached the log."""
        return len(self._deliver(limit))

    def _deliver(self, limit: int) -> dict[int, int | None]:
        with self._delivering:
            return self._deliver_locked(limit)

    def _deliver_locked(self, limit: int) -> dict[int, int | None]:
        indexes: dict[int, int | None] = {}

        def on_reply(item: OutboxItem, reply: bytes) -> None:
            result = _result.decode(reply)
            if result.error:  # dead-lettered by the log service: every resend gets the same answer
                log.error("the log service gave up on an entry", id=item.id, error=result.error[:200])
                indexes[item.id] = None
            else:
                indexes[item.id] = result.first_index

        _, failed = deliver(self.state, self.client, limit=limit, topic=SERVICE, on_reply=on_reply, max_failures=1)
        if failed:
            self._quiet_until = time.monotonic() + QUIET_AFTER_FAILURE_S
            log.info("log not answering; entries wait in the outbox", waiting=failed)
        return indexes

    def close(self) -> None:
        self.client.close()


__all__ = ["Journal"]
