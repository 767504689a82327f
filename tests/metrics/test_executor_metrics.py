"""The executor's series in the agent's `/metrics`, from a real executor worker running real tasks in
its sandbox: `bzzz_tasks{state="executing"}` while one runs, and
`bzzz_executor_task_duration_seconds{outcome}` once it ended, with a pull request or failed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.forge.harness import start_forge, stop_forge
from tests.issues import SEED, agent_workers, open_issue, wait_for_comment
from tests.metrics.harness import METRICS, Scrape, scraped

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

SLOW = """Add a greeting, slowly.

```bzzz-task
run: ["sh -c 'sleep 4; echo hello > GREETING.md'"]
```
"""
FAILING = """Fail.

```bzzz-task
run: ["sh -c 'exit 3'"]
```
"""


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


def count(scrape: Scrape, outcome: str) -> float | None:
    return scrape.get("bzzz_executor_task_duration_seconds_count", outcome=outcome)


def bucket(scrape: Scrape, outcome: str, le: str) -> float | None:
    return scrape.get("bzzz_executor_task_duration_seconds_bucket", outcome=outcome, le=le)


def test_a_task_shows_as_executing_then_in_the_duration_histogram_by_outcome(
    start_agent, forge: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("agent-1-secret-token\n")
    agent = start_agent(agent_workers(forge.url, token_file), extra=METRICS)
    agent.wait_running("executor", timeout=60)
    idle = scraped(agent, lambda s: s.get("bzzz_tasks", state="executing") == 0, 30, "the executor idle")
    assert count(idle, "pr") == 0 and count(idle, "failed") == 0  # shown, at 0, before the first task

    number = open_issue(forge, "Add a greeting", SLOW)
    scraped(agent, lambda s: s.get("bzzz_tasks", state="executing") == 1, 60, "the task shown executing")
    wait_for_comment(forge, number, "Opened ")
    done = scraped(agent, lambda s: count(s, "pr") == 1, 60, "the task's duration observed")
    assert done.get("bzzz_tasks", state="executing") == 0 and done.get("bzzz_tasks", state="discussing") == 0
    # It slept 4 s in the sandbox: above the 2.5 s bucket, and within the hour.
    assert bucket(done, "pr", "2.5") == 0 and bucket(done, "pr", "3600.0") == 1 and bucket(done, "pr", "+Inf") == 1
    assert (done.get("bzzz_executor_task_duration_seconds_sum", outcome="pr") or 0) >= 4

    open_issue(forge, "Fail", FAILING)
    failed = scraped(agent, lambda s: count(s, "failed") == 1, 60, "the failed task's duration observed")
    assert count(failed, "pr") == 1  # the earlier one is still counted
    assert failed.get("bzzz_tasks", state="executing") == 0
