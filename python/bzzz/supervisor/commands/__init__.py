"""The `bzzz ctl` commands, one module each.

A request is JSON `{"id": str, "command": str, "properties": {...}}` sent to the control
socket (`<run_dir>/control.sock`, ZeroMQ REQ/ROUTER). The answer is
`{"id": ..., "status": "ok", ...}` or `{"id": ..., "status": "error", "errno": int, "reason": str}`
with an errno from `commands.errors`. Each module's docstring says its properties and reply;
`execute(supervisor, properties)` runs in the supervisor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands import logs, restart, shutdown, start, status, stop

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor

Execute = Callable[["Supervisor", dict[str, Any]], dict[str, Any]]

COMMANDS: dict[str, Execute] = {
    "status": status.execute,
    "start": start.execute,
    "stop": stop.execute,
    "restart": restart.execute,
    "logs": logs.execute,
    "shutdown": shutdown.execute,
}
