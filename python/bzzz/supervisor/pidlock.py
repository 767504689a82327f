"""A file that says who holds it: an exclusive flock, taken without waiting and kept for the
holder's whole life, on a file that holds the holder's pid.

The kernel drops the lock when the holder's last descriptor for it closes, so a holder that
crashed or was killed -9 leaves no claim behind: whatever the file still says, the next one
takes the lock. Taking it is one system call, so two processes racing for it cannot both win
(a check of the pid in the file, then a write, lets both through). The descriptor is
close-on-exec: the supervisor's workers are its children and must neither hold its locks after
it is gone nor be blocked by them.

A lock file may be removed on release (the run dir's pid file is: a clean stop leaves a clean
run dir). It is removed while still locked, and whoever locks checks afterwards that the file
it locked is still the one at the path, else tries again: without that, a process that opened
the file just before it was removed would lock the removed file while a third locks the new
one, two holders at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class LockHeld(Exception):
    """Another live process holds the lock; `pid` is the one its file names (None if it names none)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is locked by " + (f"pid {pid}" if pid else "another process"))
        self.path = path
        self.pid = pid


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


def _still_at(fd: int, path: Path) -> bool:
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)


class PidLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.previous: int | None = None  # the pid the file named when we took it: a holder since gone
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Lock the file (created 0600 if need be) and write our pid into it. LockHeld if another
        process holds it; OSError if it cannot be opened or locked (a file system without flock)."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _pid_in(fd)
                os.close(fd)
                raise LockHeld(self.path, pid) from None
            except BaseException:
                os.close(fd)
                raise
            if _still_at(fd, self.path):
                break
            os.close(fd)  # its holder removed it as we opened it: lock the file now at the path
        self.previous = _pid_in(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self, *, remove: bool = False) -> None:
        """Let go; with `remove`, delete the file first, while it is still ours (module docs)."""
        if self._fd is None:
            return
        try:
            if remove:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None


__all__ = ["LockHeld", "PidLock"]
