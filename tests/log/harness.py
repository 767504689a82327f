"""The log worker's side of one agent, for the tests of the log service and of journals."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bzzz._core import KeyPair, MerkleLog
from bzzz.bus import Service
from bzzz.log.service import SERVICE, LogAppender
from bzzz.state import WorkerState


class Side:
    """The log worker's side of one agent: its log and state on disk, reopened at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key_pair = KeyPair.generate()
        MerkleLog.create(root / "hypercore", self.key_pair).close()
        self.log: MerkleLog | None = None
        self.state: WorkerState | None = None

    def open(self) -> LogAppender:
        self.close()
        self.log = MerkleLog.open(self.root / "hypercore", self.key_pair)
        self.state = WorkerState(self.root / "log.sqlite3")
        return LogAppender(self.log, self.state)

    def entries(self) -> list[bytes]:
        assert self.log is not None
        return [self.log.get(i) for i in range(self.log.length)]

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        if self.state is not None:
            self.state.close()
        self.log = self.state = None


@contextmanager
def log_service(side: Side, run_dir: Path) -> Iterator[LogAppender]:
    """The `log` service on the bus, served from a thread until the block ends."""
    appender = side.open()
    stop = threading.Event()
    with Service(run_dir, SERVICE, appender.handle, replies=appender.replies) as service:
        thread = threading.Thread(target=service.serve_forever, args=(stop, 0.02))
        thread.start()
        try:
            yield appender
        finally:
            stop.set()
            thread.join()
