"""Error numbers of control replies (stable: scripts may test them)."""

from __future__ import annotations

BAD_REQUEST = 1  # not JSON, not an object, missing or ill-typed fields
UNKNOWN_COMMAND = 2
UNKNOWN_WORKER = 3
WRONG_STATE = 4  # e.g. start a worker that is running


class CommandError(Exception):
    """Raised by a command's `execute`; becomes an error reply."""

    def __init__(self, errno: int, reason: str) -> None:
        super().__init__(reason)
        self.errno = errno
        self.reason = reason
