"""Fixtures for the bus tests: short run dirs, and worker-like peer processes."""

from __future__ import annotations

import json
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PEERS = Path(__file__).with_name("peers.py")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run dir with a short path: a Unix socket path must fit in 107 bytes, and
    pytest's own tmp_path (named after these long test names) often does not."""
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Peer:
    """A peer process (tests/bus/peers.py) and the JSON lines it prints."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [sys.executable, str(PEERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout_s: float = 20.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"peer {self.args} said nothing for {timeout_s} s") from None
        if line is None:
            stderr = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"peer {self.args} exited ({self.proc.wait()}): {stderr}")
        return line

    def ready(self) -> Peer:
        assert self.next().get("ready"), "the peer's first line is 'ready'"
        return self

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait(self, timeout_s: float = 30.0) -> int:
        return self.proc.wait(timeout_s)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Peer]]:
    """Start a peer (`spawn("serve", run_dir, "log")`); every one is killed at teardown."""
    peers: list[Peer] = []

    def start(*args: str | Path) -> Peer:
        peer = Peer(*map(str, args))
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.kill()
