"""Each worker's durable state: an inbox and an outbox in SQLite (WAL) under the agent's data dir.

What a worker accepted and has not finished survives any crash and is resumed after a restart;
what it must send is delivered at least once; redeliveries are recognised by message id and
answered with the result already recorded. See `bzzz.state.store` for the pattern of use.
"""

from bzzz.state.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    InboxItem,
    OutboxItem,
    SchemaVersionError,
    StateError,
    WorkerState,
    state_path,
)

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "InboxItem",
    "OutboxItem",
    "SchemaVersionError",
    "StateError",
    "WorkerState",
    "state_path",
]
