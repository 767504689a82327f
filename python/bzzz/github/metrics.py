"""The github worker's Prometheus series: how its claims went (`bzzz.github.claims`), and the
states of the tasks it holds (`bzzz.tasks.metrics.TASKS`)."""

from __future__ import annotations

from prometheus_client import Counter

from bzzz.tasks.metrics import TASKS

CLAIM_OUTCOMES = ("won", "lost", "released", "reaped")
# What the github worker holds or ended; the executor owns the other states.
GITHUB_TASK_STATES = ("claimed", "done", "failed", "released")

CLAIMS = Counter(
    "bzzz_claims",
    "Claims by how they went: won or lost (a race for an issue), released (this agent gave its "
    "own back), reaped (a peer's expired lease this agent released).",
    ["outcome"],
)
for _outcome in CLAIM_OUTCOMES:
    CLAIMS.labels(_outcome)  # every outcome shows, at 0, before it first happens


def claim(outcome: str) -> None:
    CLAIMS.labels(outcome).inc()


def tasks_held(count: int) -> None:
    TASKS.labels("claimed").set(count)


def task_ended(status: str) -> None:
    """A claim ended as `done`, `failed` or `released`."""
    TASKS.labels(status).inc()


def show_states() -> None:
    """Every state this worker owns shows, at 0, from its start."""
    for state in GITHUB_TASK_STATES:
        TASKS.labels(state)


__all__ = ["CLAIMS", "CLAIM_OUTCOMES", "GITHUB_TASK_STATES", "claim", "show_states", "task_ended", "tasks_held"]
