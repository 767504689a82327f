"""`bzzz ctl stop W`: stop a worker (SIGTERM, then SIGKILL past its shutdown timeout); it stays
stopped whatever its restart policy until `start`.

properties: `worker`. reply: the worker's status (state `stopping` or `stopped`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands._worker import named_worker

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    return supervisor.stop_worker(named_worker(supervisor, properties))
