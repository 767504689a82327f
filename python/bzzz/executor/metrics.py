"""The executor's Prometheus series: how long tasks take, by how they ended, and which phase
the task at hand is in (`bzzz.tasks.metrics.TASKS`: `discussing`, `executing`)."""

from __future__ import annotations

from prometheus_client import Histogram

from bzzz.tasks.metrics import TASKS

EXECUTOR_TASK_STATES = ("discussing", "executing")
TASK_OUTCOMES = ("pr", "failed")

# Tasks run from seconds (a refused one, a small command) to an hour (a model's rounds, a big
# test suite): roughly doubling buckets across that range.
DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, float("inf"))

TASK_DURATION = Histogram(
    "bzzz_executor_task_duration_seconds",
    "Time the executor spent on a task, from taking it to its outcome: a pull request, or failed.",
    ["outcome"],
    buckets=DURATION_BUCKETS,
)


def task_done(seconds: float, opened_pr: bool) -> None:
    TASK_DURATION.labels("pr" if opened_pr else "failed").observe(seconds)


class TaskPhase:
    """The phase of the executor's one task at a time: at most one of its states is 1."""

    def __init__(self) -> None:
        self.state: str | None = None
        # Every series of the executor shows from its start, at 0: a query has data before the first task.
        for state in EXECUTOR_TASK_STATES:
            TASKS.labels(state)
        for outcome in TASK_OUTCOMES:
            TASK_DURATION.labels(outcome)

    def enter(self, state: str) -> None:
        self.leave()
        TASKS.labels(state).inc()
        self.state = state

    def leave(self) -> None:
        if self.state is not None:
            TASKS.labels(self.state).dec()
            self.state = None


__all__ = ["DURATION_BUCKETS", "EXECUTOR_TASK_STATES", "TASK_DURATION", "TASK_OUTCOMES", "TaskPhase", "task_done"]
