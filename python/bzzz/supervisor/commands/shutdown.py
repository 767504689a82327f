"""`bzzz ctl shutdown`: stop every worker in order and end the agent (exit status 0).

properties: none. reply: `{"shutting_down": true}`, sent before the workers are stopped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    supervisor.request_shutdown(0, "shutdown requested over the control socket")
    return {"shutting_down": True}
