"""`bzzz ctl status`: every worker's pid, state, uptime, restarts and last exit.

properties: none. reply: `{"agent": {...}, "workers": [{worker, pid, state, uptime_s, restarts,
last_exit, restart_policy, log}, ...]}`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    return supervisor.status()
