"""What every worker process shares: who it is, where its agent lives, heartbeats, stopping.

The supervisor passes the worker's identity in the environment (`BZZZ_WORKER`, `BZZZ_RUN_DIR`,
`BZZZ_DATA_DIR`, `BZZZ_NODE_ID`, `BZZZ_HEARTBEAT_INTERVAL_S`, and the agent's workers in
`BZZZ_WORKERS`). Heartbeats are sent from the
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
from typing import NoReturn

import msgspec
import zmq

from bzzz.redaction import install_stream_redaction

HEARTBEAT_SOCKET = "heartbeat.sock"


class Heartbeat(msgspec.Struct):
    worker: str
    pid: int


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


def run(main: Callable[[WorkerRuntime], int | None]) -> NoReturn:
    """Run a worker's main function: SIGTERM asks it to stop, its return value is the exit status.

    Everything the worker prints (log lines, tracebacks) goes through `bzzz.redaction` first:
    its log file is an artifact a secret must not reach, and a task's output or an exception's
    message can carry one. Secrets registered later (`load_token`) are covered from then on."""
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
