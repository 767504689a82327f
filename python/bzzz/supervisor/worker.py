"""One supervised worker: its OS process, its state, and why it last stopped."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from bzzz.config import WorkerConfig

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    # If the supervisor is killed outright, its workers must not live on unsupervised.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class WorkerStartError(Exception):
    """The worker's process could not be started (the Python, the log file); one line says why."""


class State(str, Enum):
    STARTING = "starting"  # process started, no heartbeat yet: not ready
    RUNNING = "running"  # has sent a heartbeat: ready
    STOPPING = "stopping"  # asked to stop (SIGTERM sent), not exited yet
    BACKOFF = "backoff"  # exited, waiting to be started again
    STOPPED = "stopped"  # stopped by the operator or at shutdown
    EXITED = "exited"  # exited and, by its restart policy, stays down


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with status {status}"


def last_words(log_path: Path, limit: int = 500) -> str | None:
    """The last line a worker wrote to its log (its own, already redacted), for the agent's own
    output: a worker that exits saying why (the executor's sandbox check) is then heard in
    `podman logs`, not only in its log file."""
    try:
        with open(log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(log.tell() - 8192, 0))
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    said = next((line.strip() for line in reversed(lines) if line.strip()), None)
    return said if said is None or len(said) <= limit else said[: limit - 3] + "..."


@dataclass
class Worker:
    name: str
    config: WorkerConfig
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    state: State = State.STOPPED
    started_at: float | None = None  # monotonic
    restarts: int = 0
    last_exit: str | None = None
    last_heartbeat: float = 0.0
    quick_failures: int = 0
    restart_at: float | None = None
    kill_at: float | None = None
    hung: bool = False
    then: str | None = field(default=None)  # what to do once it has exited: "restart" | "stop"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def uptime(self, now: float) -> float | None:
        return now - self.started_at if self.started_at is not None and self.process is not None else None

    def start(self, env: dict[str, str], now: float) -> None:
        """Start the process; WorkerStartError if it cannot be (and nothing changes)."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")
        except OSError as err:
            raise WorkerStartError(f"cannot open its log {self.log_path}: {err.strerror or err}") from None
        with log:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", self.config.module, *self.config.args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **env, **self.config.env},
                    start_new_session=True,  # terminal signals go to the supervisor, which stops us in order
                    preexec_fn=_die_with_parent,
                )
            except OSError as err:  # e.g. the Python was replaced or lost its execute bit under us
                raise WorkerStartError(f"cannot execute {sys.executable}: {err.strerror or err}") from None
        self.state = State.STARTING
        self.started_at = now
        self.last_heartbeat = now
        self.restart_at = None
        self.kill_at = None
        self.hung = False

    def terminate(self, now: float) -> None:
        """SIGTERM now; the supervisor sends SIGKILL at `kill_at` if it is still there."""
        if self.process is None:
            return
        self.state = State.STOPPING
        self.kill_at = now + self.config.shutdown_timeout_s
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None:
            try:
                self.process.send_signal(sig)
            except ProcessLookupError:
                pass

    def reap(self) -> int | None:
        """The exit status if the process has exited (and forget the process), else None."""
        if self.process is None:
            return None
        status = self.process.poll()
        if status is None:
            return None
        self.process = None
        self.kill_at = None
        return status

    def status(self, now: float) -> dict[str, object]:
        uptime = self.uptime(now)
        return {
            "worker": self.name,
            "pid": self.pid,
            "state": self.state.value,
            "uptime_s": round(uptime, 3) if uptime is not None else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "restart_policy": self.config.restart.value,
            "log": str(self.log_path),
        }


__all__ = ["State", "Worker", "WorkerStartError", "describe_exit", "last_words"]
