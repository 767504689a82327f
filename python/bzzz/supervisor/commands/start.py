"""`bzzz ctl start W`: start a worker that is stopped or has exited.

properties: `worker`. reply: the worker's status. errno WRONG_STATE if it is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bzzz.supervisor.commands._worker import named_worker

if TYPE_CHECKING:
    from bzzz.supervisor.supervisor import Supervisor


def execute(supervisor: Supervisor, properties: dict[str, Any]) -> dict[str, Any]:
    return supervisor.start_worker(named_worker(supervisor, properties))
