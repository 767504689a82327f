"""Drive the go-libp2p gossipsub peer (tests/interop/go) from Python.

`build_go_peer()` compiles `gossippeer` once into tests/interop/go/.bin and
rebuilds it only when go.mod, go.sum or a .go file is newer. `GoPeer.start()`
runs it and speaks its line protocol (see the comment atop go/main.go):

    with GoPeer.start(seed, topics=["t"], connect=[py_addr]) as go:
        go.publish("t", b"hi")
        msg = go.wait_message(lambda m: m.data == b"ho", timeout=10)

A cold build downloads go-libp2p through the Go module proxy and compiles it:
about 1.5 to 2 minutes on two cores; later builds take seconds.
"""

from __future__ import annotations

import base64
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

GO_DIR = Path(__file__).resolve().parent / "go"
BINARY = GO_DIR / ".bin" / "gossippeer"
BUILD_TIMEOUT = 900  # seconds; a cold build on a loaded two-core machine
READY_TIMEOUT = 30.0

_build_lock = threading.Lock()


class GoNotFound(RuntimeError):
    """There is no `go` toolchain on PATH (nor at /usr/local/go/bin/go)."""


class GoPeerError(RuntimeError):
    """gossippeer failed to build, start, or answer a command."""


def go_path() -> str | None:
    found = shutil.which("go")
    if found is None and os.access("/usr/local/go/bin/go", os.X_OK):
        found = "/usr/local/go/bin/go"
    return found


def _newest_source_mtime() -> float:
    sources = [GO_DIR / "go.mod", GO_DIR / "go.sum", *GO_DIR.glob("*.go")]
    return max(p.stat().st_mtime for p in sources)


def build_go_peer() -> Path:
    """The path of an up-to-date `gossippeer` binary, building it if needed."""
    with _build_lock:
        if BINARY.is_file() and BINARY.stat().st_mtime >= _newest_source_mtime():
            return BINARY
        go = go_path()
        if go is None:
            raise GoNotFound("`go` (>= 1.26) is not on PATH; the go-libp2p interop tests need it")
        BINARY.parent.mkdir(exist_ok=True)
        # Build beside the target, then rename: parallel test workers never see
        # a half-written binary. -mod=readonly: a stale go.sum fails loudly
        # instead of being rewritten.
        fd, tmp = tempfile.mkstemp(prefix=".gossippeer-", dir=BINARY.parent)
        os.close(fd)
        try:
            proc = subprocess.run(
                [go, "build", "-mod=readonly", "-o", tmp, "."],
                cwd=GO_DIR,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
            if proc.returncode != 0:
                raise GoPeerError(f"go build in {GO_DIR} exited {proc.returncode}:\n{proc.stderr.strip()}")
            os.replace(tmp, BINARY)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return BINARY


@dataclass(frozen=True)
class GoMessage:
    """One `MSG` line: a message another peer published, as the go peer got it."""

    topic: str
    from_id: str  # base58 peer id of the signed author (not the forwarding hop)
    recv_ns: int  # unix nanoseconds when the go peer received it
    data: bytes


class GoPeer:
    """A running gossippeer process. Build with `GoPeer.start(...)`, end with `close()`."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc
        self._cond = threading.Condition()
        self._messages: list[GoMessage] = []
        self._peers: list[str] = []
        self._replies: queue.Queue[str] = queue.Queue()  # PUBLISHED / DONE / ERROR lines, in order
        self._stderr: deque[str] = deque(maxlen=50)
        self._ready: str | None = None
        self._eof = False
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()

    @classmethod
    def start(
        cls,
        seed: bytes,
        topics: Sequence[str] = (),
        connect: Sequence[str] = (),
        *,
        listen: str = "/ip4/127.0.0.1/tcp/0",
        timeout: float = READY_TIMEOUT,
    ) -> GoPeer:
        """Run a go peer whose ed25519 identity comes from the 32-byte `seed`; wait for READY."""
        if len(seed) != 32:
            raise ValueError(f"seed must be 32 bytes, got {len(seed)}")
        args = [str(build_go_peer()), "--seed-hex", seed.hex(), "--listen", listen]
        for topic in topics:
            args += ["--topic", topic]
        for addr in connect:
            args += ["--connect", addr]
        proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        peer = cls(proc)
        with peer._cond:
            peer._cond.wait_for(lambda: peer._ready is not None or peer._eof, timeout)
        if peer._ready is None:
            why = "exited before READY" if peer._eof else f"printed no READY within {timeout} s"
            peer.close()
            peer._stderr_thread.join(2.0)  # its last words explain why
            raise GoPeerError(f"gossippeer {why}{peer._stderr_tail()}")
        return peer

    @property
    def addr(self) -> str:
        """The listen multiaddr, ending in /p2p/<peer id>."""
        assert self._ready is not None
        return self._ready

    @property
    def peer_id(self) -> str:
        return self.addr.rsplit("/p2p/", 1)[1]

    def peers(self) -> list[str]:
        """Peer ids that connected so far, in order (one per connect)."""
        with self._cond:
            return list(self._peers)

    def messages(self) -> list[GoMessage]:
        """Every message received so far, in arrival order."""
        with self._cond:
            return list(self._messages)

    def wait_message(self, predicate: Callable[[GoMessage], bool], timeout: float) -> GoMessage:
        """The first received message that matches, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for msg in self._messages[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self._messages)
                remaining = deadline - time.monotonic()
                if self._eof or remaining <= 0:
                    raise TimeoutError(f"no matching message from the go peer within {timeout} s{self._stderr_tail()}")
                self._cond.wait(remaining)

    def publish(self, topic: str, data: bytes, timeout: float = 10.0) -> None:
        """Publish `data` once on `topic` (the go peer joins it if needed)."""
        self._command(f"PUB {topic} {base64.b64encode(data).decode()}", f"PUBLISHED {topic}", timeout)

    def rate(self, topic: str, rate: float, count: int, timeout: float | None = None) -> None:
        """Publish `count` messages at `rate`/s; each is 8 bytes of big-endian send time + 200 zeros."""
        if timeout is None:
            timeout = count / rate + 30.0
        self._command(f"RATE {topic} {rate} {count}", f"DONE {topic}", timeout)

    def close(self, timeout: float = 5.0) -> int:
        """Ask the peer to QUIT, kill it if it lingers; return its exit code."""
        if self._proc.poll() is None:
            try:
                self._write("QUIT")
                assert self._proc.stdin is not None
                self._proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def __enter__(self) -> GoPeer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals ---------------------------------------------------------

    def _write(self, line: str) -> None:
        assert self._proc.stdin is not None
        with self._write_lock:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()

    def _command(self, line: str, expect: str, timeout: float) -> None:
        self._write(line)
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise GoPeerError(f"no {expect!r} from gossippeer within {timeout} s{self._stderr_tail()}") from None
        if reply != expect:
            raise GoPeerError(f"gossippeer answered {reply!r} to {line.split(' ', 2)[:2]}")

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.rstrip("\n")
            kind, _, rest = line.partition(" ")
            with self._cond:
                if kind == "MSG":
                    topic, from_id, recv_ns, data = rest.split(" ")
                    self._messages.append(GoMessage(topic, from_id, int(recv_ns), base64.b64decode(data)))
                elif kind == "READY":
                    self._ready = rest
                elif kind == "PEER":
                    self._peers.append(rest)
                elif kind in ("PUBLISHED", "DONE", "ERROR"):
                    self._replies.put(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._replies.put("EOF")
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:  # drained so go-libp2p's logging never blocks it
            self._stderr.append(line.rstrip("\n"))

    def _stderr_tail(self) -> str:
        tail = "\n".join(self._stderr)
        return f"; its stderr:\n{tail}" if tail else ""
