"""A process that claims a pid file when told to, for the race tests (tests/supervisor/test_pidlock.py).

    python tests/supervisor/lock_child.py

Reads commands on stdin, one a line, and answers each with one line on stdout:

    lock PATH      take `bzzz.supervisor.pidlock.PidLock(PATH)`: "held", or "busy PID"
    unlock [rm]    let go of it (and remove the file with `rm`): "free"
    check PATH     the old claim's first step, read the pid file: "busy PID" if it names
                   another live process, else "clear"
    write PATH     the old claim's second step, write our pid into it: "held"
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bzzz.supervisor.pidlock import LockHeld, PidLock


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> None:
    lock: PidLock | None = None
    for line in sys.stdin:
        command, *args = line.split()
        if command == "lock":
            lock = PidLock(Path(args[0]))
            try:
                lock.acquire()
                answer = "held"
            except LockHeld as held:
                answer = f"busy {held.pid}"
        elif command == "unlock":
            assert lock is not None
            lock.release(remove=args == ["rm"])
            answer = "free"
        elif command == "check":
            path = Path(args[0])
            pid = int(path.read_text().strip() or "0") if path.exists() else 0
            answer = f"busy {pid}" if pid and pid != os.getpid() and alive(pid) else "clear"
        elif command == "write":
            Path(args[0]).write_text(f"{os.getpid()}\n")
            answer = "held"
        else:
            answer = f"unknown {command}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
