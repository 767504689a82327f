"""`bzzz_tasks{state}`: the tasks of this agent by where they are, one gauge for the two workers
that hold them. The github worker sets `claimed` (claims held now) and counts `done`, `failed`
and `released` (claims it ended since it started); the executor sets `discussing` and
`executing` (the task it is working on now).
"""

from __future__ import annotations

from prometheus_client import Gauge

TASK_STATES = ("claimed", "discussing", "executing", "done", "failed", "released")

# Each worker sets only its own states: `livesum` adds the two workers' figures and forgets a
# dead worker's (a restarted github worker counts its claims again from its state file).
TASKS = Gauge(
    "bzzz_tasks",
    "This agent's tasks: claimed, discussing, executing now; done, failed, released since the github worker started.",
    ["state"],
    multiprocess_mode="livesum",
)

__all__ = ["TASKS", "TASK_STATES"]
