"""The agent's one `/metrics`: every worker's series and the supervisor's own, in one scrape.

Workers are separate processes, so they use prometheus_client's multiprocess mode: the
supervisor gives each one `PROMETHEUS_MULTIPROC_DIR` (`bzzz.paths.metrics_multiproc_dir`), where
prometheus_client keeps each process's values in files of its own; the endpoint merges them at
each scrape (`MultiProcessCollector`). Counters of a worker that died stay in the sum (a restart
loses no count); its `live*` gauges are removed when the supervisor reaps it
(`mark_process_dead`), so a dead process never holds a gauge up. The folder is emptied at every
start: files of a previous run would otherwise add their counts to this one's.

The supervisor's own series are read from its worker table at scrape time (a collector, not
values kept up to date), by the HTTP server's thread: plain attribute reads, which the GIL
keeps whole.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from bzzz.capabilities.machine import bzzz_version
from bzzz.paths import metrics_addr, metrics_multiproc_dir
from bzzz.supervisor.errors import StartError
from bzzz.supervisor.worker import State

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from bzzz.supervisor.supervisor import Supervisor

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class SupervisorCollector:
    """`bzzz_agent_info`, `bzzz_worker_up` and `bzzz_worker_restarts_total`, as the supervisor sees them now."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "bzzz_agent_info", "This agent: its node id and bzzz version (always 1).", labels=["node_id", "version"]
        )
        info.add_metric([self.supervisor.config.node_id, bzzz_version()], 1)
        yield info
        up = GaugeMetricFamily(
            "bzzz_worker_up",
            "1 while the worker runs and heartbeats, else 0 (starting, restarting, stopped).",
            labels=["worker"],
        )
        restarts = CounterMetricFamily(
            "bzzz_worker_restarts",
            "Restarts of the worker by the supervisor after it exited or hung (as `bzzz ctl status`).",
            labels=["worker"],
        )
        for name, worker in self.supervisor.workers.items():
            up.add_metric([name], 1 if worker.state is State.RUNNING else 0)
            restarts.add_metric([name], worker.restarts)
        yield up
        yield restarts


class MetricsEndpoint:
    """The multiprocess folder of one run dir, and the HTTP server that serves what is in it."""

    def __init__(self, run_dir: Path, listen: tuple[str, int] | None) -> None:
        self.folder = metrics_multiproc_dir(run_dir)
        self.addr_file = metrics_addr(run_dir)
        self.listen = listen
        self.address: str | None = None  # "HOST:PORT" once bound
        self._server: WSGIServer | None = None

    def prepare(self) -> None:
        """Start clean: no file of a previous run's workers, no stale address (also with metrics off)."""
        self.addr_file.unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        if self.listen is not None:
            self.folder.mkdir(mode=0o700)

    def worker_env(self) -> dict[str, str]:
        """What a worker's environment needs for its series to reach the endpoint (nothing when off:
        its metrics then stay in its own process, as before)."""
        return {MULTIPROC_ENV: str(self.folder)} if self.listen is not None else {}

    def start(self, supervisor: Supervisor) -> str | None:
        """Bind and serve in a thread; the bound "HOST:PORT" (also written to the run dir's
        `metrics.addr`), or None when metrics are off. StartError if the address cannot be bound."""
        if self.listen is None:
            return None
        host, port = self.listen
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.folder))  # type: ignore[no-untyped-call]
        registry.register(SupervisorCollector(supervisor))
        try:
            self._server, _ = start_http_server(port, addr=host, registry=registry)
        except OSError as err:
            raise StartError(f"metrics.listen {host}:{port}: cannot serve there: {err.strerror or err}", 1) from None
        bound_host, bound_port = self._server.server_address[:2]
        host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        tmp = self.addr_file.with_suffix(".tmp")
        tmp.write_text(self.address + "\n")
        tmp.replace(self.addr_file)  # whole or absent: a reader never sees half an address
        return self.address

    def process_gone(self, pid: int | None) -> None:
        """A worker process exited: its live gauges go with it (its counters stay)."""
        if pid is not None and self.listen is not None:
            mark_process_dead(pid, str(self.folder))  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.addr_file.unlink(missing_ok=True)


__all__ = ["MULTIPROC_ENV", "MetricsEndpoint", "SupervisorCollector"]
