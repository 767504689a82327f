"""How every `bzzz` command reports a user's mistake: one line on stderr, an exit status, no traceback.

Status 2: bad usage or configuration (a wrong option, an unreadable or invalid config file, a data
dir that cannot be used). Status 1: the command was right but failed at run time (no agent
answering, a log that does not verify, a program that cannot be executed).
"""

from __future__ import annotations

from typing import NoReturn

import typer

USAGE = 2
FAILURE = 1
PREFIX = "bzzz: error: "


def one_line(message: str) -> str:
    """A multi-line message (pydantic's, click's) folded onto one line."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def say(message: str) -> None:
    """The error line itself, for where the exit is taken elsewhere (the program's last resort)."""
    typer.secho(PREFIX + one_line(message), err=True, fg=typer.colors.RED)


def fail(message: str, status: int = FAILURE) -> NoReturn:
    say(message)
    raise typer.Exit(status)


def describe_os_error(err: OSError) -> str:
    """'<file>: <reason>' without Python's '[Errno 2]' decoration."""
    reason = err.strerror or str(err)
    return f"{err.filename}: {reason}" if err.filename is not None else reason


__all__ = ["FAILURE", "PREFIX", "USAGE", "describe_os_error", "fail", "one_line", "say"]
