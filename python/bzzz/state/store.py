"""A worker's durable state: one SQLite file (WAL) holding its inbox and its outbox.

```
<data_dir>/state/<worker>.sqlite3     (+ -wal and -shm next to it while open)
    inbox     work this worker accepted: msg_id (unique), payload, finished_at, result
    outbox    what this worker must deliver at least once: topic, payload, key (unique),
              attempts, next_attempt_at, acked_at
```

How a worker uses it, so that a kill -9 at any instant loses nothing and does nothing twice:

```python
state = WorkerState.for_worker(rt.data_dir, rt.name)
for item in state.unfinished():                   # 1. after a restart: what was under way
    handle(item.msg_id, item.payload)
for msg_id, payload in incoming:
    if not state.accept(msg_id, payload):         # 2. a redelivery: never accepted twice,
        if (result := state.result_of(msg_id)) is not None:
            reply(msg_id, result)                 #    and answered with the same result
        continue
    ack_upstream(msg_id)                          #    only once the accept is committed
    handle(msg_id, payload)

def handle(msg_id, payload):
    result = do_the_work(payload)
    with state.transaction() as db:               # 3. the work's effects, its outgoing messages
        db.execute("INSERT INTO my_effects ...")  #    and the finish commit together
        state.put("bzzz/log/append", result, key=msg_id)
        state.finish(msg_id, result)
```

A deliverer loop sends `pending()`, then `ack(id)` or `nack(id)` (exponential backoff). A crash
between a send and its ack sends that message again: give each message an id the receiver
dedups on (the outbox `key`, or this worker's name and the outbox `id`), so that the receiver's
own `accept` refuses the copy.

Effects outside this database (a file, a GitHub comment, a message on the bus) cannot commit
with the finish: a crash between the effect and the finish does the effect again on resume.
Make such effects idempotent (a key derived from `msg_id`) or move them behind the outbox.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from prometheus_client import Gauge

from bzzz.paths import DataDir
from bzzz.state.metrics import QUEUE_DEPTH

SCHEMA_VERSION = 1
APPLICATION_ID = 0x627A7A7A  # b"bzzz": marks the file as a bzzz state file (PRAGMA application_id)

# One statement each: executescript() would commit the transaction they are created in.
_SCHEMA_V1 = (
    """CREATE TABLE inbox (
        seq         INTEGER PRIMARY KEY,                -- acceptance order (max + 1: always increasing)
        msg_id      TEXT    NOT NULL UNIQUE,
        payload     BLOB    NOT NULL,
        accepted_at REAL    NOT NULL,
        finished_at REAL,                               -- NULL: accepted, not finished
        result      BLOB
    )""",
    "CREATE INDEX inbox_unfinished ON inbox (seq) WHERE finished_at IS NULL",
    "CREATE INDEX inbox_finished ON inbox (finished_at) WHERE finished_at IS NOT NULL",
    """CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale ack hits nothing
        topic           TEXT    NOT NULL,
        payload         BLOB    NOT NULL,
        key             TEXT    UNIQUE,                     -- idempotent enqueue (NULL: no key)
        created_at      REAL    NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,         -- failed deliveries (nacks)
        next_attempt_at REAL    NOT NULL,
        acked_at        REAL                                -- NULL: still to deliver
    )""",
    "CREATE INDEX outbox_pending ON outbox (id) WHERE acked_at IS NULL",
    "CREATE INDEX outbox_acked ON outbox (acked_at) WHERE acked_at IS NOT NULL",
)

_WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class StateError(Exception):
    """A state file that cannot be used: not a bzzz state file, unreadable, or closed."""


class SchemaVersionError(StateError):
    """The state file was written by a newer bzzz, whose schema this one does not know."""


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One message this worker accepted (and maybe finished)."""

    seq: int
    msg_id: str
    payload: bytes
    accepted_at: float
    finished_at: float | None
    result: bytes | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One message this worker must deliver at least once."""

    id: int
    topic: str
    payload: bytes
    key: str | None
    created_at: float
    attempts: int
    next_attempt_at: float
    acked_at: float | None


def state_path(data_dir: Path, worker: str) -> Path:
    """`<data_dir>/state/<worker>.sqlite3`; the worker name is checked to be a plain name."""
    if not _WORKER_NAME.fullmatch(worker):
        raise ValueError(f"worker name {worker!r} must be letters, digits, '-' or '_'")
    return DataDir(data_dir).state / f"{worker}.sqlite3"


class WorkerState:
    """A worker's inbox and outbox in one SQLite file (WAL mode).

    Durability. In WAL mode with `synchronous=NORMAL` (the default here) a commit is a
    `write()` of the transaction's pages and a commit frame to the `-wal` file, without
    `fsync`. Once `write()` returns the data is in the kernel's page cache, which does not die
    with the process: a worker killed at any instant (kill -9, OOM) finds every committed
    transaction on reopen, and never a half of one (an uncommitted tail of the WAL is ignored).
    On power loss or a kernel crash the last transactions since the WAL was last synced (at a
    checkpoint) can be lost, though the file is never corrupt; the state simply goes back a
    little. A worker that tells someone else "accepted" on the strength of a commit (an upstream
    ack) and must survive power loss too opens with `durable=True` (`synchronous=FULL`: one
    `fsync` per commit, from ~0.1 ms on a good SSD to ~10 ms on a spinning disk, on top of
    the ~50-100 us a commit costs otherwise).

    Threads. One connection, guarded by a lock: a `WorkerState` may be shared by threads, and
    `transaction()` holds the lock until it ends, so another thread's calls wait for it rather
    than join it. For parallelism (or from other processes) open another `WorkerState` on the
    same file: writers then queue on SQLite's write lock (`BEGIN IMMEDIATE`, waiting up to
    `busy_timeout_s` before `sqlite3.OperationalError: database is locked`), and readers never
    block. Do not carry a `WorkerState` across `fork()`; open a new one in the child.
    """

    def __init__(
        self,
        path: Path,
        *,
        durable: bool = False,
        busy_timeout_s: float = 5.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 300.0,
    ) -> None:
        self.path = Path(path)
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._lock = threading.RLock()
        self._depth = 0  # transaction nesting; only touched with the lock held
        self._queue_gauge: Gauge | None = None  # the worker's bzzz_bus_queue_depth, for a worker's own state
        self._queue_changed = False  # the outbox grew or shrank since the gauge was last set
        if not self.path.exists():
            # Private to the agent's user: payloads are task data. SQLite gives -wal and -shm
            # the main file's permissions.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            self._db: sqlite3.Connection | None = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as e:
            raise StateError(f"cannot open state file {self.path}: {e}") from e
        try:
            self._open(durable, busy_timeout_s)
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_worker(cls, data_dir: Path, worker: str, *, durable: bool = False) -> WorkerState:
        """The state of worker `worker` of the agent whose data dir is `data_dir` (created if new)."""
        path = state_path(Path(data_dir), worker)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = cls(path, durable=durable)
        state._queue_gauge = QUEUE_DEPTH.labels(worker)
        state._report_queue_depth()  # a restarted worker's backlog shows at once
        return state

    def _open(self, durable: bool, busy_timeout_s: float) -> None:
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                return self._open_once(durable)
            except sqlite3.OperationalError as e:
                # Turning a new file to WAL takes an exclusive lock without waiting for it (no
                # busy handler there): processes opening a new file at once wait for it here.
                busy = e.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() > deadline:
                    raise StateError(f"cannot use state file {self.path}: {e}") from e
                time.sleep(0.002)
            except sqlite3.DatabaseError as e:  # "file is not a database", ...
                raise StateError(f"cannot use state file {self.path}: {e}") from e

    def _open_once(self, durable: bool) -> None:
        db = self._connection()
        # Before anything else: is this a file we may use at all?
        app_id, version = self._header(db)
        if app_id not in (0, APPLICATION_ID):
            raise StateError(f"{self.path} is not a bzzz state file (application_id {app_id:#x})")
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.path} has state schema version {version}, written by a newer bzzz; this one"
                f" knows versions up to {SCHEMA_VERSION}. Upgrade bzzz, or move the file away to"
                " start this worker with empty state."
            )
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateError(f"{self.path}: cannot use WAL mode (got {mode!r}; a network filesystem?)")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        if version < SCHEMA_VERSION:
            self._migrate()

    @staticmethod
    def _header(db: sqlite3.Connection) -> tuple[int, int]:
        app_id = int(db.execute("PRAGMA application_id").fetchone()[0])
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        return app_id, version

    def _migrate(self) -> None:
        with self.transaction() as db:
            # Re-read under the write lock: another process may have created the schema meanwhile.
            app_id, version = self._header(db)
            if version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()[0]
                if app_id != APPLICATION_ID and tables:
                    raise StateError(f"{self.path} is an SQLite file with other tables, not a bzzz state file")
                for statement in _SCHEMA_V1:
                    db.execute(statement)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            # Later versions: `if version == 1: ...; version = 2` and so on, each in this transaction.

    # --- transactions -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError(f"the state {self.path} is closed")
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: every inbox, outbox and own-table change inside commits together or not at all.

        Yields the connection, for the worker's own tables (any names but `inbox` and `outbox`);
        do not commit or roll back on it yourself. An exception rolls everything back and
        propagates. Nested `transaction()`s are savepoints: an exception caught around an inner
        one undoes only the inner one. The write lock is taken at the start (`BEGIN IMMEDIATE`),
        so a transaction never fails half-way for lack of it; keep them short.
        """
        with self._lock:
            db = self._connection()
            depth = self._depth
            if depth == 0:
                db.execute("BEGIN IMMEDIATE")
            else:
                db.execute(f"SAVEPOINT bzzz_{depth}")
            self._depth = depth + 1
            try:
                yield db
            except BaseException:
                self._depth = depth
                if db.in_transaction:  # SQLite may have rolled back already (disk full, ...)
                    if depth == 0:
                        db.execute("ROLLBACK")
                    else:
                        db.execute(f"ROLLBACK TO bzzz_{depth}")
                        db.execute(f"RELEASE bzzz_{depth}")
                raise
            self._depth = depth
            try:
                db.execute("COMMIT" if depth == 0 else f"RELEASE bzzz_{depth}")
            except BaseException:
                if depth == 0 and db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if depth == 0 and self._queue_changed:
                self._report_queue_depth()  # what committed: a rolled-back put never showed

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A transaction for a method whose one write statement is atomic by itself: inside the
        caller's transaction it needs no savepoint of its own (which would cost two statements)."""
        with self._lock:
            if self._depth:
                yield self._connection()
                return
            with self.transaction() as db:
                yield db

    # --- inbox ------------------------------------------------------------------------------

    def accept(self, msg_id: str, payload: bytes) -> bool:
        """Hold `payload` durably as work to do; False if `msg_id` was accepted before (a redelivery)."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO inbox (msg_id, payload, accepted_at) VALUES (?, ?, ?) ON CONFLICT (msg_id) DO NOTHING",
                (msg_id, payload, time.time()),
            )
            return cursor.rowcount == 1

    def finish(self, msg_id: str, result: bytes | None = None) -> bool:
        """Mark accepted work done, keeping `result` for redeliveries; False if it was already done.

        Call it inside `transaction()` together with the work's own effects. KeyError if
        `msg_id` was never accepted (or was pruned).
        """
        with self._writing() as db:
            cursor = db.execute(
                "UPDATE inbox SET finished_at = ?, result = ? WHERE msg_id = ? AND finished_at IS NULL",
                (time.time(), result, msg_id),
            )
            if cursor.rowcount == 1:
                return True
            if db.execute("SELECT 1 FROM inbox WHERE msg_id = ?", (msg_id,)).fetchone() is None:
                raise KeyError(msg_id)
            return False

    def unfinished(self) -> list[InboxItem]:
        """Accepted and not finished, in acceptance order: what to resume after a restart."""
        with self._lock:
            rows = (
                self._connection()
                .execute(f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE finished_at IS NULL ORDER BY seq")
                .fetchall()
            )
        return [InboxItem(*row) for row in rows]

    def get(self, msg_id: str) -> InboxItem | None:
        """The inbox entry of `msg_id`, finished or not; None if never accepted (or pruned)."""
        with self._lock:
            row = (
                self._connection().execute(f"SELECT {_INBOX_COLUMNS} FROM inbox WHERE msg_id = ?", (msg_id,)).fetchone()
            )
        return None if row is None else InboxItem(*row)

    def result_of(self, msg_id: str) -> bytes | None:
        """The result `msg_id` was finished with, to answer a redelivery the same way; else None.

        None also when it is unknown, unfinished, or finished without a result: `get()` tells these apart.
        """
        item = self.get(msg_id)
        return None if item is None else item.result

    # --- outbox -----------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, *, key: str | None = None) -> int:
        """Enqueue a message to deliver at least once; returns its id.

        With a `key`, enqueueing the same key again (a retried handler) adds nothing and returns
        the first entry's id, even once that entry was delivered (until it is pruned).
        """
        now = time.time()
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO outbox (topic, payload, key, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (key) DO NOTHING",
                (topic, payload, key, now, now),
            )
            if cursor.rowcount == 1:
                assert cursor.lastrowid is not None
                self._queue_changed = True
                return cursor.lastrowid
            return int(db.execute("SELECT id FROM outbox WHERE key = ?", (key,)).fetchone()[0])

    def pending(self, limit: int = 100, *, now: float | None = None, topic: str | None = None) -> list[OutboxItem]:
        """Undelivered messages that are due (`next_attempt_at <= now`), oldest first; of one
        `topic` only, if given (several deliverers, each for its own topic, share one outbox).

        A nacked message waits out its delay while later ones go ahead; a deliverer that needs
        strict order per topic stops at its first failure itself.
        """
        due = time.time() if now is None else now
        where, args = "acked_at IS NULL AND next_attempt_at <= ?", list[object]([due])
        if topic is not None:
            where += " AND topic = ?"
            args.append(topic)
        with self._lock:
            rows = (
                self._connection()
                .execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE {where} ORDER BY id LIMIT ?", (*args, limit))
                .fetchall()
            )
        return [OutboxItem(*row) for row in rows]

    def next_due(self) -> float | None:
        """When the earliest undelivered message is due (wall clock), for a deliverer to sleep until; None if none."""
        with self._lock:
            row = (
                self._connection().execute("SELECT min(next_attempt_at) FROM outbox WHERE acked_at IS NULL").fetchone()
            )
        return None if row[0] is None else float(row[0])

    def ack(self, id: int) -> bool:
        """Mark a message delivered; False if it already was, or is unknown (acks may be repeated too)."""
        with self._writing() as db:
            cursor = db.execute("UPDATE outbox SET acked_at = ? WHERE id = ? AND acked_at IS NULL", (time.time(), id))
            self._queue_changed |= cursor.rowcount == 1
            return cursor.rowcount == 1

    def nack(self, id: int, delay_s: float | None = None) -> float | None:
        """A delivery failed: count the attempt and retry after `delay_s`; the delay, or None if
        delivered or unknown.

        Without `delay_s`, exponential backoff with jitter: after the n-th failure
        `min(backoff_initial_s * 2**(n-1), backoff_max_s)`, times a random factor in [0.5, 1].
        """
        with self._writing() as db:
            row = db.execute("SELECT attempts FROM outbox WHERE id = ? AND acked_at IS NULL", (id,)).fetchone()
            if row is None:
                return None
            attempts = int(row[0]) + 1
            if delay_s is None:
                delay_s = self.backoff_delay(attempts)
            db.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
                (attempts, time.time() + delay_s, id),
            )
            return delay_s

    def backoff_delay(self, attempts: int) -> float:
        """The retry delay after `attempts` failed deliveries (see `nack`)."""
        exponent = min(max(attempts - 1, 0), 62)
        return min(self.backoff_initial_s * 2.0**exponent, self.backoff_max_s) * random.uniform(0.5, 1.0)

    def _report_queue_depth(self) -> None:
        self._queue_changed = False
        if self._queue_gauge is not None:
            with self._lock:
                (pending,) = self._connection().execute("SELECT count(*) FROM outbox WHERE acked_at IS NULL").fetchone()
            self._queue_gauge.set(pending)

    # --- housekeeping -----------------------------------------------------------------------

    def prune(self, older_than_s: float) -> int:
        """Forget finished inbox and delivered outbox entries older than this; returns how many.

        Keep `older_than_s` above the longest time a message can be redelivered: a redelivery of a
        pruned `msg_id` is accepted (and done) again, and a pruned outbox `key` can be enqueued again.
        """
        cutoff = time.time() - older_than_s
        with self.transaction() as db:
            inbox = db.execute(
                "DELETE FROM inbox WHERE finished_at IS NOT NULL AND finished_at < ?", (cutoff,)
            ).rowcount
            outbox = db.execute("DELETE FROM outbox WHERE acked_at IS NOT NULL AND acked_at < ?", (cutoff,)).rowcount
        return inbox + outbox

    def counts(self) -> dict[str, int]:
        """How many entries in each state: unfinished, finished, pending (undelivered), delivered."""
        with self._lock:
            db = self._connection()
            unfinished, finished = db.execute(
                "SELECT count(*) FILTER (WHERE finished_at IS NULL), count(finished_at) FROM inbox"
            ).fetchone()
            pending, delivered = db.execute(
                "SELECT count(*) FILTER (WHERE acked_at IS NULL), count(acked_at) FROM outbox"
            ).fetchone()
        return {"unfinished": unfinished, "finished": finished, "pending": pending, "delivered": delivered}

    def close(self) -> None:
        """Close the connection (idempotent); a transaction still open is rolled back."""
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                db.close()

    def __enter__(self) -> WorkerState:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WorkerState({str(self.path)!r})"


_INBOX_COLUMNS = "seq, msg_id, payload, accepted_at, finished_at, result"
_OUTBOX_COLUMNS = "id, topic, payload, key, created_at, attempts, next_attempt_at, acked_at"
