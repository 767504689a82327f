"""One agent per data dir: the supervisor holds an exclusive flock on `<data_dir>/agent.lock`
for its whole life.

Two agents with the same data dir but different run dirs would otherwise both run their
workers on the same state files. The kernel drops the lock when the supervisor's last file
descriptor for it closes, so a supervisor that crashed or was killed -9 leaves nothing to clean
up. The descriptor is close-on-exec: workers are the supervisor's children and must neither
hold the lock after it is gone nor be blocked by it. The file is never removed: removing a
lock file that another process has open and is about to lock lets two processes each lock a
different file of the same name.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bzzz.paths import DataDir
from bzzz.supervisor.errors import StartError



class DataDirBusy(StartError):
    """Another live agent holds this data dir."""


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = DataDir(data_dir).lock
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Create the data dir if need be and lock it; StartError if it cannot be used,
        DataDirBusy if another agent holds it."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StartError(f"data dir {self.data_dir}: not a directory") from None
        except OSError as err:
            raise StartError(f"data dir {self.data_dir}: cannot create it: {err.strerror or err}") from None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise StartError(f"data dir {self.data_dir}: cannot write in it ({self.path}: {err.strerror or err})") \
                from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            holder = f"another agent (pid {pid})" if pid else "another agent"
            raise DataDirBusy(f"{holder} holds the data dir {self.data_dir} (lock {self.path})") from None
        except OSError as err:  # a file system without flock
            os.close(fd)
            raise StartError(f"data dir {self.data_dir}: cannot lock {self.path}: {err.strerror or err}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


__all__ = ["DataDirBusy", "DataDirLock"]
