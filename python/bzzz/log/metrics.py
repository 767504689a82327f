"""The own log's Prometheus series, kept by the log worker (its one writer).

Module-level metrics on the process's default registry: one log worker per process. Under a
supervisor (prometheus_client's multiprocess mode) the agent's `/metrics` merges them with the
other workers' (`bzzz.supervisor.metrics`).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# `livesum`: only the live log worker sets it; a dead one's value leaves with it, so the
# endpoint never adds a killed worker's length to its successor's.
LOG_LENGTH = Gauge("bzzz_log_length", "Entries in this agent's own signed log.", multiprocess_mode="livesum")
APPENDED = Counter("bzzz_log_appended_entries", "Entries appended to this agent's own signed log.")


class LogMetrics:
    """Follows the log's length: each new entry counted once, whoever appended it (the `log`
    service or the worker's own start and stop events)."""

    def __init__(self, length: int) -> None:
        self.length = length  # entries before this process started are not counted again
        LOG_LENGTH.set(length)

    def observe(self, length: int) -> None:
        if length > self.length:
            APPENDED.inc(length - self.length)
        self.length = length
        LOG_LENGTH.set(length)


__all__ = ["APPENDED", "LOG_LENGTH", "LogMetrics"]
