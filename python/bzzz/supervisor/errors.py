"""Why an agent could not start: a reason a user can act on, and the exit status it means."""

from __future__ import annotations


class StartError(RuntimeError):
    """The agent cannot start; `str()` is one line naming what is wrong. `status` is the exit
    status the command line gives it: 2 for the configuration or the data dir, 1 for the host."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


__all__ = ["StartError"]
