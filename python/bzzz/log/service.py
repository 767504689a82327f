"""Appending to the agent's log from any worker: the log worker's `log` service on the bus.

    LogClient.append(entries, request_id) ──Request──> svc-log.sock ──> LogAppender.handle
                                          <──Reply(AppendResult)────

The log has one writer, the log worker; everyone else asks it over the bus, and every entry
lands exactly once, whichever of the two is killed when. The client side is at-least-once:
`bzzz.bus.Client` resends the same `request_id` until it is answered, and a worker that must
not lose an entry across its *own* restarts keeps it in its outbox with a stable id
(`bzzz.state.outbox`). The log worker makes the effect happen once:

1. **intent**: in one SQLite transaction it accepts the request id into its inbox and records
   the index the first entry will get (the log's length right now);
2. **append**: the entries, as one signed batch; after a crash either all of a batch is in
   the log or none of it (the log cuts a torn tail back to its newest signature);
3. **finish**: the inbox entry gets the result, which answers every later copy of the request.

A kill between 1 and 2 or between 2 and 3 leaves an unfinished intent. Before the restarted
worker serves anything, `recover()` holds each such intent against the log: entries already
at the intended index are only finished; a log that ends at the intended index gets them
appended. The log cannot be anywhere else, except after a power cut took the unsynced tail of
the log but not of SQLite (both are "safe when the process dies", neither fsyncs by default):
then the entries are appended at the end, once, and a warning says so.

An intent that crashes the worker again and again (a poison request) would trip the
supervisor's restart-intensity limit and take the whole agent down; each recovery counts an
attempt, and past `MAX_ATTEMPTS` the request is finished with an error instead (dead-lettered):
the client gets the error, the log worker lives.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import msgspec
import structlog
from pydantic import BaseModel, ConfigDict, Field

from bzzz._core import MerkleLog
from bzzz.bus import Client, Request, ServiceError
from bzzz.state import WorkerState

SERVICE = "log"
MAX_ATTEMPTS = 3
MAX_ENTRIES_PER_REQUEST = 10_000


class LogWorkerSettings(BaseModel):
    """`[workers.log.settings]`."""

    model_config = ConfigDict(extra="forbid")

    # A client resends a request for a few seconds at most (bzzz.bus.Client: timeout x retries),
    # and an outbox for as long as it keeps retrying: a day of finished request ids answers
    # every late copy and keeps the inbox small.
    retention_s: float = Field(default=24 * 3600.0, gt=0, description="How long a finished request's answer is kept.")
    prune_every_s: float = Field(default=600.0, gt=0, description="How often answers older than that are dropped.")


log = structlog.get_logger("bzzz.log.service")


class AppendRequest(msgspec.Struct, frozen=True, array_like=True, gc=False):
    entries: list[bytes]


class AppendResult(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Where the entries went: indexes `first_index .. first_index + count - 1`; or why not."""

    first_index: int
    count: int
    error: str = ""


def append_request(entries: Sequence[bytes]) -> bytes:
    """The body of a request to the log service (for an outbox message to `SERVICE`)."""
    return _encode(AppendRequest(list(entries)))


class LogAppendError(Exception):
    """The log service refused or gave up on an append (`bzzz.bus.RequestTimeout` if unreachable)."""


class LogWriteFailed(BaseException):
    """Appending to the log itself failed (a full disk, an I/O error).

    A BaseException so that the bus `Service`, which answers a handler's ordinary exceptions
    with an error reply, lets it through: the intent is committed but the outcome unknown,
    so the worker must die and `recover()` decide on restart, not tell the client "failed".
    """


_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(AppendRequest).decode
_decode_result = msgspec.msgpack.Decoder(AppendResult).decode

_INTENTS = """CREATE TABLE IF NOT EXISTS log_intent (
    msg_id      TEXT    PRIMARY KEY,    -- the inbox entry (request id) this intent belongs to
    first_index INTEGER NOT NULL,       -- the log's length when the intent was committed
    attempts    INTEGER NOT NULL DEFAULT 0  -- recoveries so far: a poison request is given up
)"""


class InboxReplies:
    """The bus `ReplyCache` of the log service: the durable inbox's results, which survive restarts."""

    def __init__(self, state: WorkerState) -> None:
        self.state = state

    def seen(self, request_id: str) -> bytes | None:
        return self.state.result_of(request_id)

    def remember(self, request_id: str, reply: bytes) -> None:
        pass  # the handler finished the inbox entry in the same step as the append


class LogAppender:
    """The log worker's side: appends requested entries to `merkle_log`, each request once."""

    def __init__(self, merkle_log: MerkleLog, state: WorkerState) -> None:
        self.log = merkle_log
        self.state = state
        self.replies = InboxReplies(state)
        with state.transaction() as db:
            db.execute(_INTENTS)

    def handle(self, request: Request) -> bytes:
        """The bus handler: append the request's entries (once), reply with an `AppendResult`."""
        try:
            entries = _decode_request(request.body).entries
        except msgspec.DecodeError as error:
            raise ValueError(f"not an append request: {error}") from None
        if not entries:
            raise ValueError("an append request needs at least one entry")
        if len(entries) > MAX_ENTRIES_PER_REQUEST:
            raise ValueError(f"{len(entries)} entries in one request; at most {MAX_ENTRIES_PER_REQUEST}")
        with self.state.transaction() as db:
            accepted = self.state.accept(request.request_id, request.body)
            if accepted:
                db.execute(
                    "INSERT INTO log_intent (msg_id, first_index) VALUES (?, ?)", (request.request_id, self.log.length)
                )
        if not accepted:  # a copy of a request whose first copy was cut short: finish that one
            item = self.state.get(request.request_id)
            assert item is not None
            if item.result is None:
                self._recover_one(request.request_id, item.payload)
                item = self.state.get(request.request_id)
                assert item is not None and item.result is not None
            return item.result
        first = self._append(entries)
        return self._finish(request.request_id, AppendResult(first, len(entries)))

    def recover(self) -> int:
        """Settle every intent a crash left unfinished, before serving; returns how many there were."""
        unfinished = self.state.unfinished()
        for item in unfinished:
            self._recover_one(item.msg_id, item.payload)
        return len(unfinished)

    def _recover_one(self, msg_id: str, payload: bytes) -> None:
        with self.state.transaction() as db:
            row = db.execute("SELECT first_index, attempts FROM log_intent WHERE msg_id = ?", (msg_id,)).fetchone()
            first, attempts = (int(row[0]), int(row[1]) + 1) if row is not None else (None, 1)
            db.execute(
                "INSERT INTO log_intent (msg_id, first_index, attempts) VALUES (?, ?, ?)"
                " ON CONFLICT (msg_id) DO UPDATE SET attempts = excluded.attempts",
                (msg_id, -1 if first is None else first, attempts),
            )
        # The attempt is counted before it is made: if it kills the worker, the next start knows.
        try:
            entries = _decode_request(payload).entries
        except msgspec.DecodeError as error:  # pragma: no cover - only valid requests are accepted
            self._finish(msg_id, AppendResult(-1, 0, f"unreadable append request: {error}"))
            return
        if attempts > MAX_ATTEMPTS:
            log.error("giving up on an append that failed every time", request_id=msg_id, attempts=attempts - 1)
            self._finish(msg_id, AppendResult(-1, 0, f"gave up after {attempts - 1} failed attempts"))
            return
        if first is not None and first >= 0 and self._holds(first, entries):
            self._finish(msg_id, AppendResult(first, len(entries)))
            return
        if first is not None and first != self.log.length:
            log.warning(
                "the log is not where an unfinished append left it; appending at its end",
                request_id=msg_id,
                intended_index=first,
                length=self.log.length,
            )
        start = self._append(entries)
        self._finish(msg_id, AppendResult(start, len(entries)))

    def _holds(self, first: int, entries: Sequence[bytes]) -> bool:
        if self.log.length < first + len(entries):
            return False
        return all(self.log.get(first + k) == entry for k, entry in enumerate(entries))

    def _append(self, entries: list[bytes]) -> int:
        first = self.log.length
        try:
            if len(entries) == 1:
                self.log.append(entries[0])
            else:
                self.log.append_batch(entries)
        except OSError as error:
            raise LogWriteFailed(f"appending to the log failed: {error}") from error
        return first

    def _finish(self, msg_id: str, result: AppendResult) -> bytes:
        reply = _encode(result)
        with self.state.transaction() as db:
            self.state.finish(msg_id, reply)
            db.execute("DELETE FROM log_intent WHERE msg_id = ?", (msg_id,))
        return reply

    def prune(self, older_than_s: float) -> int:
        """Forget finished requests older than this (a copy arriving later would be appended again)."""
        try:
            return self.state.prune(older_than_s)
        except sqlite3.OperationalError as error:  # busy: try again next time
            log.warning("could not prune the log service's inbox", error=str(error))
            return 0


class LogClient:
    """What other workers use to append to the agent's log."""

    def __init__(self, run_dir: Path | str, *, sender: str = "", timeout_s: float = 2.0, retries: int = 3) -> None:
        self.client = Client(run_dir, sender=sender, timeout_s=timeout_s, retries=retries)

    def append(self, entries: Sequence[bytes] | bytes, *, request_id: str | None = None) -> AppendResult:
        """Append one entry (bytes) or a batch; where they went.

        Give a `request_id` that stays the same across your own restarts (an outbox key) to
        have an entry appended once however often you send it. Raises `LogAppendError` when
        the log service refuses, `bzzz.bus.RequestTimeout` when it does not answer.
        """
        batch = [entries] if isinstance(entries, bytes) else list(entries)
        try:
            raw = self.client.request(SERVICE, append_request(batch), request_id=request_id)
        except ServiceError as error:
            raise LogAppendError(str(error)) from error
        result = _decode_result(raw)
        if result.error:
            raise LogAppendError(f"the log service gave up on request {request_id}: {result.error}")
        return result

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> LogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "MAX_ATTEMPTS",
    "SERVICE",
    "AppendRequest",
    "append_request",
    "AppendResult",
    "InboxReplies",
    "LogAppendError",
    "LogAppender",
    "LogClient",
    "LogWriteFailed",
]
