"""Socket files in the agent's run dir: names, length limits, stale files, permissions.

Layout of one agent's run dir (mode 0700; every socket 0600):

    bus.in          XSUB of the event proxy; publishers connect here
    bus.out         XPUB of the event proxy; subscribers connect here
    svc-NAME.sock   ROUTER of service NAME; clients connect here

Two agents never share a run dir, so they can never hear each other.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import stat
import sys
import time
from pathlib import Path
from typing import NamedTuple

import zmq

from bzzz.bus.errors import BusError

BUS_IN = "bus.in"
BUS_OUT = "bus.out"

# sockaddr_un.sun_path is 108 bytes on Linux and 104 on the BSDs and macOS, NUL included;
# ZeroMQ refuses a longer ipc path with a bare ENAMETOOLONG, so say it better, up front.
MAX_SOCKET_PATH = 103 if sys.platform == "darwin" or "bsd" in sys.platform else 107

_SERVICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


def service_file(name: str) -> str:
    if not _SERVICE_NAME.match(name):
        raise BusError(f"service name {name!r} must be 1-64 letters, digits, '-' or '_'")
    return f"svc-{name}.sock"


def socket_path(run_dir: Path | str, name: str) -> Path:
    path = Path(run_dir) / name
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise BusError(
            f"socket path {str(path)!r} is {len(os.fsencode(path))} bytes; Unix sockets allow {MAX_SOCKET_PATH}."
            " Use a shorter run dir (BZZZ_RUN_DIR)."
        )
    return path


def endpoint(path: Path) -> str:
    return f"ipc://{path}"


def is_live(path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket at `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        return True  # a full accept backlog: someone is there
    except PermissionError as error:
        raise BusError(f"{path} belongs to another user: {error}") from None
    finally:
        probe.close()
    return True


def clear_stale(path: Path) -> bool:
    """Remove a socket file nobody listens on any more; True if one was removed.

    ZeroMQ would unlink whatever is at the path when it binds, live or not, so a second
    supervisor started on the same run dir would silently steal the first one's
    sockets. Checking first turns that into a clear error.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(mode):
        raise BusError(f"{path} exists and is not a socket; refusing to replace it")
    if is_live(path):
        raise BusError(f"{path} is in use by a live process (another agent on the same run dir?)")
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class Bound(NamedTuple):
    """A socket file we bound, and its inode: we remove it later only if it is still ours."""

    path: Path
    inode: int


def bind_private(sock: zmq.Socket[bytes], run_dir: Path | str, name: str) -> Bound:
    """Bind `sock` to the socket file `name` in `run_dir`, readable and writable by us alone.

    The run dir is created 0700 if missing; that keeps out everyone else in the moment
    between bind() and chmod() (an existing run dir is its owner's business: the
    supervisor makes it 0700).
    """
    path = socket_path(run_dir, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    clear_stale(path)
    try:
        sock.bind(endpoint(path))
    except zmq.ZMQError as error:
        hint = " (is the run dir writable?)" if error.errno in (errno.EACCES, errno.EPERM) else ""
        raise BusError(f"cannot bind {path}: {error}{hint}") from error
    os.chmod(path, 0o600)
    return Bound(path, path.lstat().st_ino)


def release(bound: Bound, wait_s: float = 1.0) -> None:
    """Remove the file of a socket we bound and have closed.

    ZeroMQ (4.3) leaves the file behind when a listener closes; left there it would look
    like a stale socket to the next start, which is harmless, but a clean stop leaves a
    clean run dir. The listener closes in ZeroMQ's I/O thread a moment after
    `close()`, hence the short wait until nobody accepts on it any more.
    """
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if bound.path.lstat().st_ino != bound.inode:
                return  # replaced by someone else since: theirs now
            if not is_live(bound.path) or time.monotonic() >= deadline:
                bound.path.unlink()
                return
        except (FileNotFoundError, BusError):
            return
        time.sleep(0.005)
