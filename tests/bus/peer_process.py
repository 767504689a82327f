"""A worker-like peer process of the bus tests (tests/bus/peers.py) and the JSON lines it prints;
the `spawn` fixture (tests/bus/conftest.py) starts them."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

PEERS = Path(__file__).with_name("peers.py")


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
