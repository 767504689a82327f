"""The layout of an agent's data dir: the one place where any path inside it is spelled.

    <data_dir>/
      agent.lock              held by the running supervisor (one agent per data dir)
      run/                    sockets and the pid file, unless `run_dir` is set elsewhere
      log/                    the agent's own signed log: secret_key, hypercore/
      replicas/<key hex>/     peers' logs copied by key: hypercore/, staging
      replicas/following.json the keys this agent keeps following
      state/<worker>.sqlite3  each worker's inbox and outbox
      logs/<worker>.log       each worker's output, written by the supervisor
      mesh/identity.key       the libp2p identity (the peer id)
      workspaces/             the executor's task areas (unless the executor is told otherwise)

The run dir (`<data_dir>/run` unless `run_dir` says otherwise) holds, besides the sockets and
the pid file, `metrics.addr` (where the agent serves `/metrics`, "HOST:PORT") and `metrics/`
(the workers' Prometheus multiprocess files, emptied at each start).

A log directory (the agent's own or a replica) keeps the Merkle log's files in `hypercore/`
(`merkle_dir`). Nothing here imports the rest of Bzzz: every concern imports its paths from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PID_FILE = "supervisor.pid"  # in the run dir: the supervisor's, locked for its life
MERKLE_DIR = "hypercore"  # inside a log directory: the Merkle log's own files
LOG_KEY_FILE = "secret_key"  # inside the agent's own log directory
METRICS_ADDR_FILE = "metrics.addr"  # in the run dir: where /metrics is served, "HOST:PORT"
METRICS_MULTIPROC_DIR = "metrics"  # in the run dir: the workers' prometheus_client multiprocess files
MONITOR_ADDR_FILE = "monitor.addr"  # in the run dir: "HOST:PORT" of `bzzz monitor`'s page


def default_data_dir() -> Path:
    """`$BZZZ_DATA_DIR`, else `$XDG_DATA_HOME/bzzz`, else `~/.local/share/bzzz`."""
    if env := os.environ.get("BZZZ_DATA_DIR"):
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "bzzz"


def merkle_dir(log_dir: Path) -> Path:
    """The Merkle log's files inside a log directory (the agent's own log or a replica)."""
    return log_dir / MERKLE_DIR


def metrics_addr(run_dir: Path) -> Path:
    """The file naming the address the agent's `/metrics` is bound to (absent: not served)."""
    return run_dir / METRICS_ADDR_FILE


def metrics_multiproc_dir(run_dir: Path) -> Path:
    """The workers' `PROMETHEUS_MULTIPROC_DIR`: one set of files per worker process."""
    return run_dir / METRICS_MULTIPROC_DIR


@dataclass(frozen=True)
class DataDir:
    root: Path

    @classmethod
    def default(cls) -> DataDir:
        return cls(default_data_dir())

    @property
    def lock(self) -> Path:
        return self.root / "agent.lock"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def replicas(self) -> Path:
        return self.root / "replicas"

    def replica(self, key_hex: str) -> Path:
        return self.replicas / key_hex

    @property
    def following(self) -> Path:
        return self.replicas / "following.json"

    @property
    def state(self) -> Path:
        return self.root / "state"

    def worker_output(self, worker: str) -> Path:
        return self.root / "logs" / f"{worker}.log"

    @property
    def identity(self) -> Path:
        return self.root / "mesh" / "identity.key"

    @property
    def workspaces(self) -> Path:
        return self.root / "workspaces"


__all__ = [
    "LOG_KEY_FILE",
    "MERKLE_DIR",
    "METRICS_ADDR_FILE",
    "METRICS_MULTIPROC_DIR",
    "MONITOR_ADDR_FILE",
    "PID_FILE",
    "DataDir",
    "default_data_dir",
    "merkle_dir",
    "metrics_addr",
    "metrics_multiproc_dir",
]
