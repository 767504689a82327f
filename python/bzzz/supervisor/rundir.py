"""The agent's run dir: its pid file and sockets, private to the agent's user.

The supervisor holds an exclusive flock on its pid file for its whole life
(`bzzz.supervisor.pidlock`): two agents never share a run dir, however close together they
start, and a supervisor that crashed leaves no claim behind. It does leave its socket files;
the next one removes them once the lock is its own.
"""

from __future__ import annotations

from pathlib import Path

from bzzz.paths import PID_FILE
from bzzz.supervisor.errors import StartError
from bzzz.supervisor.pidlock import LockHeld, PidLock

# Its modification time is when the agent started (the github worker reads it so).
# The supervisor's own sockets. Others in the run dir (the bus's, services') belong to
# whoever binds them, and the bus checks for itself whether a socket file is still live.
OWN_SOCKETS = ("control.sock", "heartbeat.sock")


class RunDirBusy(StartError):
    """Another live supervisor owns this run dir."""


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = PidLock(path / PID_FILE)

    def claim(self) -> list[Path]:
        """Make the run dir ours (mode 0700, our pid file, locked until `release`); returns the
        stale files of a previous supervisor it found (the pid file is rewritten, the rest
        removed).

        RunDirBusy if a live supervisor has it; StartError if it cannot be made or written."""
        try:
            return self._claim()
        except FileExistsError:
            raise StartError(f"run dir {self.path}: not a directory") from None
        except OSError as err:
            where = f" ({err.filename}: {err.strerror})" if err.filename and str(err.filename) != str(self.path) else ""
            raise StartError(f"run dir {self.path}: cannot use it: {err.strerror or err}{where}") from None

    def _claim(self) -> list[Path]:
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o700)
        try:
            self._lock.acquire()
        except LockHeld as held:
            pid = f" (supervisor pid {held.pid})" if held.pid else ""
            raise RunDirBusy(f"an agent is already running in {self.path}{pid}") from None
        stale = [self._lock.path] if self._lock.previous else []
        for name in OWN_SOCKETS:
            sock = self.path / name
            if sock.exists():
                sock.unlink()
                stale.append(sock)
        return stale

    def release(self) -> None:
        """Remove our sockets and pid file, then let go of the run dir."""
        for name in OWN_SOCKETS:
            (self.path / name).unlink(missing_ok=True)
        self._lock.release(remove=True)


def private_ipc(run_dir: Path, name: str) -> tuple[str, Path]:
    """The endpoint of a socket in the run dir, and its path (to chmod 0600 after bind)."""
    path = run_dir / name
    return f"ipc://{path}", path
