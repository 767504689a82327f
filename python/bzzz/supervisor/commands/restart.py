"""`bzzz ctl restart W`: stop a worker and start it again. An operator's restart does not
count toward the restart-intensity limit.

properties: `worker`. reply: the worker's status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands._worker import named_worker

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    return supervisor.restart_worker(named_worker(supervisor, properties))
