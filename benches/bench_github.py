"""From an issue opened on the forge to a verified claim, with 10 agents polling it.

Each agent is a `GithubAgent` on a thread of its own with its own PyGithub client, polling
every POLL_S (conditionally) with a settle time of SETTLE_S; issues are opened one at a time,
at random moments, and each is timed from the answer to its creation to the moment its winner
had verified the claim (the read-back after settling). The target is the poll interval + 1 s.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benches.rates import CEILINGS
from bzzz.github.agent import GithubAgent, Settings, Task
from bzzz.github.client import connect
from bzzz.state import WorkerState
from bzzz.tasks import Outcome
from tests.forge.harness import start_forge, stop_forge

AGENTS = [f"agent-{n}" for n in range(10)]
POLL_S = 2.0
SETTLE_S = 0.2
ISSUES = 30

SEED = "\n".join(
    [
        "users:",
        "  - {login: alice, site_admin: true, tokens: [alice-token]}",
        *[f"  - {{login: {a}, tokens: [{a}-token]}}" for a in AGENTS],
        "repos:",
        "  - owner: alice",
        "    name: tasks",
        "    collaborators: {" + ", ".join(f"{a}: push" for a in AGENTS) + "}",
        "    labels: [{name: bzzz-task}]",
    ]
)


def done(task: Task) -> Outcome:
    return Outcome(True, "done")


def test_issue_created_to_verified_claim_with_10_agents(benchmark) -> None:
    root = Path(tempfile.mkdtemp(prefix="bzzz-bench-gh-"))
    forge = start_forge(root / "forge", seed=SEED)
    stop = threading.Event()
    agents = [
        GithubAgent(
            Settings(a, ["alice/tasks"], poll_interval_s=POLL_S, settle_s=SETTLE_S, max_tasks=ISSUES),
            connect(forge.url, f"{a}-token", pace_s=0, write_pace_s=0),
            WorkerState(root / f"{a}.sqlite3"),
            done,
        )
        for a in AGENTS
    ]

    def loop(agent: GithubAgent) -> None:
        while not stop.is_set():
            agent.step()
            time.sleep(0.02)

    threads = [threading.Thread(target=loop, args=(a,), daemon=True) for a in agents]
    for t in threads:
        t.start()
    opened: dict[int, float] = {}
    pace = random.Random(5)
    try:
        for _ in range(ISSUES):
            time.sleep(pace.uniform(0, POLL_S))
            response = forge.call(
                "POST",
                "/repos/alice/tasks/issues",
                token="alice-token",
                json={"title": "task", "labels": ["bzzz-task"]},
            )
            opened[response.json()["number"]] = time.time()
        deadline = time.monotonic() + 60
        claimed: dict[int, list[float]] = {}
        while time.monotonic() < deadline:
            claimed = {}
            for agent in agents:
                with agent.state.transaction() as db:
                    for number, at in db.execute("SELECT number, claimed_at FROM claims"):
                        claimed.setdefault(int(number), []).append(float(at))
            if len(claimed) == ISSUES:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for agent in agents:
            agent.close()
        stop_forge(forge)
    assert sorted(claimed) == sorted(opened), "every issue claimed"
    assert all(len(times) == 1 for times in claimed.values()), "each by exactly one agent"
    latencies = sorted(claimed[n][0] - opened[n] for n in opened)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    benchmark.extra_info.update({"p50_s": p50, "p99_s": p99})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    CEILINGS["issue opened -> verified claim, p50 (10 agents)"] = (p50, POLL_S + 1, "s")
    CEILINGS["issue opened -> verified claim, p99 (10 agents)"] = (p99, POLL_S + 1, "s")
