"""The agent's run dir: its pid file and sockets, private to the agent's user.

A supervisor that crashed leaves its pid file and socket files behind; the next one removes
them, but only after checking that the pid in the file is not a live supervisor (two agents
must never share a run dir).
"""

from __future__ import annotations

import os
from pathlib import Path

from bzzz.supervisor.errors import StartError

PID_FILE = "supervisor.pid"
# The supervisor's own sockets. Others in the run dir (the bus's, services') belong to
# whoever binds them, and the bus checks for itself whether a socket file is still live.
OWN_SOCKETS = ("control.sock", "heartbeat.sock")


class RunDirBusy(StartError):
    """Another live supervisor owns this run dir."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(run_dir: Path) -> list[Path]:
    """Make `run_dir` ours (mode 0700, our pid file); returns the stale files removed.

    RunDirBusy if a live supervisor has it; StartError if it cannot be made or written."""
    try:
        return _claim(run_dir)
    except FileExistsError:
        raise StartError(f"run dir {run_dir}: not a directory") from None
    except OSError as err:
        where = f" ({err.filename}: {err.strerror})" if err.filename and str(err.filename) != str(run_dir) else ""
        raise StartError(f"run dir {run_dir}: cannot use it: {err.strerror or err}{where}") from None


def _claim(run_dir: Path) -> list[Path]:
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    pid_file = run_dir / PID_FILE
    removed: list[Path] = []
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip() or "0")
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            raise RunDirBusy(f"an agent is already running in {run_dir} (supervisor pid {pid})")
        pid_file.unlink()
        removed.append(pid_file)
    for name in OWN_SOCKETS:
        sock = run_dir / name
        if sock.exists():
            sock.unlink()
            removed.append(sock)
    tmp = pid_file.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(pid_file)
    return removed


def release(run_dir: Path) -> None:
    for name in (PID_FILE, *OWN_SOCKETS):
        (run_dir / name).unlink(missing_ok=True)


def private_ipc(run_dir: Path, name: str) -> tuple[str, Path]:
    """The endpoint of a socket in the run dir, and its path (to chmod 0600 after bind)."""
    path = run_dir / name
    return f"ipc://{path}", path
