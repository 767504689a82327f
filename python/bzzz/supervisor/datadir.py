"""One agent per data dir: the supervisor holds an exclusive flock on `<data_dir>/agent.lock`
for its whole life (`bzzz.supervisor.pidlock`).

Two agents with the same data dir but different run dirs would otherwise both run their
workers on the same state files. A supervisor that crashed or was killed -9 leaves nothing to
clean up: the kernel drops its lock. The file stays when the agent stops; it holds nothing but
the last holder's pid.
"""

from __future__ import annotations

from pathlib import Path

from bzzz.paths import DataDir
from bzzz.supervisor.errors import StartError
from bzzz.supervisor.pidlock import LockHeld, PidLock


class DataDirBusy(StartError):
    """Another live agent holds this data dir."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = DataDir(data_dir).lock
        self._lock = PidLock(self.path)

    @property
    def held(self) -> bool:
        return self._lock.held

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
            self._lock.acquire()
        except LockHeld as held:
            holder = f"another agent (pid {held.pid})" if held.pid else "another agent"
            raise DataDirBusy(f"{holder} holds the data dir {self.data_dir} (lock {self.path})") from None
        except OSError as err:
            if err.filename is not None:  # opening it failed, not locking it
                raise StartError(
                    f"data dir {self.data_dir}: cannot write in it ({self.path}: {err.strerror or err})"
                ) from None
            raise StartError(f"data dir {self.data_dir}: cannot lock {self.path}: {err.strerror or err}") from None

    def release(self) -> None:
        self._lock.release()


__all__ = ["DataDirBusy", "DataDirLock"]
