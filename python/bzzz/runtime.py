"""What every worker process shares: who it is, where its agent lives, heartbeats, stopping.

The supervisor passes the worker's identity in the environment (`BZZZ_WORKER`, `BZZZ_RUN_DIR`,
`BZZZ_DATA_DIR`, `BZZZ_NODE_ID`, `BZZZ_HEARTBEAT_INTERVAL_S`, the agent's workers in
`BZZZ_WORKERS`, and the worker's settings, checked and completed by `bzzz.config`, as JSON in
`BZZZ_WORKER_SETTINGS`). A worker logs JSON lines (structlog), each with its worker name and,
inside a bus request, the request id. Heartbeats are sent from the
worker's own main loop, never from a side thread: a thread would keep beating while the main
loop hangs, which is exactly what heartbeats are there to catch.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar

import msgspec
import structlog
import zmq
from pydantic import BaseModel, ValidationError
from structlog.typing import EventDict

from bzzz.redaction import install_stream_redaction

HEARTBEAT_SOCKET = "heartbeat.sock"


class Heartbeat(msgspec.Struct):
    worker: str
    pid: int


SettingsT = TypeVar("SettingsT", bound=BaseModel)


class WorkerRuntime:
    def __init__(self) -> None:
        try:
            self.name = os.environ["BZZZ_WORKER"]
            self.run_dir = Path(os.environ["BZZZ_RUN_DIR"])
            self.data_dir = Path(os.environ["BZZZ_DATA_DIR"])
        except KeyError as missing:
            raise SystemExit(f"{missing} is not set: workers are started by `bzzz agent run`") from None
        self.node_id = os.environ.get("BZZZ_NODE_ID", "")
        # The agent's workers (this one's peers), as the supervisor runs them.
        self.workers = frozenset(name for name in os.environ.get("BZZZ_WORKERS", "").split(",") if name)
        self.interval = float(os.environ.get("BZZZ_HEARTBEAT_INTERVAL_S", "1.0"))
        self.stopping = threading.Event()
        self._context = zmq.Context.instance()
        self._beat = self._context.socket(zmq.PUSH)
        self._beat.setsockopt(zmq.LINGER, 0)
        self._beat.setsockopt(zmq.SNDHWM, 10)
        self._beat.connect(f"ipc://{self.run_dir / HEARTBEAT_SOCKET}")
        self._message = msgspec.msgpack.encode(Heartbeat(worker=self.name, pid=os.getpid()))
        self._last_beat = 0.0

    def settings(self, model: type[SettingsT]) -> SettingsT:
        """This worker's `[workers.NAME.settings]`, as `model`."""
        try:
            return model.model_validate_json(os.environ.get("BZZZ_WORKER_SETTINGS") or "{}")
        except ValidationError as err:  # the supervisor checked them: only a hand-started worker gets here
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_url=False))
            raise SystemExit(f"{self.name}: invalid settings: {problems}") from None

    def heartbeat(self) -> None:
        """Tell the supervisor this worker's main loop is alive (at most twice an interval).

        The first heartbeat also says the worker is ready: until then the supervisor shows it
        as `starting`. Send it once set-up is done."""
        now = time.monotonic()
        if now - self._last_beat >= self.interval / 2:
            try:
                self._beat.send(self._message, zmq.NOBLOCK)
            except zmq.Again:
                pass  # the supervisor is busy or restarting; the next beat will do
            self._last_beat = now

    def sleep(self, seconds: float) -> bool:
        """Wait, heartbeating; False as soon as the worker is asked to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            self.heartbeat()
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            self.stopping.wait(min(left, self.interval / 2))
        return False

    def close(self) -> None:
        self._beat.close()


def configure_logging(worker: str) -> None:
    """JSON lines on stderr (the worker's log file), each with its time, level and worker, and
    whatever the code binds for its context (`request_id` inside a bus request, `task`...)."""

    def add_worker(logger: Any, method: str, event: EventDict) -> EventDict:
        event.setdefault("worker", worker)  # a processor, not a context variable: every thread's lines
        return event

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_worker,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def run(main: Callable[[WorkerRuntime], int | None]) -> NoReturn:
    """Run a worker's main function: SIGTERM asks it to stop, its return value is the exit status.

    Everything the worker prints (log lines, tracebacks) goes through `bzzz.redaction` first:
    its log file is an artifact a secret must not reach, and a task's output or an exception's
    message can carry one. Secrets registered later (`bzzz.secrets`) are covered from then on."""
    configure_logging(os.environ.get("BZZZ_WORKER", ""))
    install_stream_redaction()
    runtime = WorkerRuntime()

    def on_term(signum: int, frame: FrameType | None) -> None:
        runtime.stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    try:
        status = main(runtime)
    finally:
        runtime.close()
    sys.exit(status or 0)
