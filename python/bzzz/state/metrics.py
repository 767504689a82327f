"""The durable outbox's Prometheus series: how much each worker still has to deliver."""

from __future__ import annotations

from prometheus_client import Gauge

# Each worker sets its own label: `livesum` shows a live worker's backlog and drops a dead
# one's (its successor reports the same rows, read again from the same SQLite file).
QUEUE_DEPTH = Gauge(
    "bzzz_bus_queue_depth",
    "Entries waiting in the worker's durable outbox (not yet acknowledged by whom they are for).",
    ["worker"],
    multiprocess_mode="livesum",
)

__all__ = ["QUEUE_DEPTH"]
