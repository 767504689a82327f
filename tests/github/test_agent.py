"""The github worker's loop against a forge: claims, leases, outages, restarts, capabilities.

Tasks here are plain functions standing in for the executor (issue 7); everything GitHub-side is
the real forge, and what happened is read back from it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bzzz.capabilities import Capabilities
from bzzz.github.agent import GithubAgent, Settings, Task
from bzzz.github.client import connect
from bzzz.state import WorkerState
from bzzz.tasks import Outcome
from tests.forge.harness import Forge, start_forge, stop_forge

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
  - {login: agent-2, tokens: [agent-2-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push, agent-2: push}
    labels: [{name: bzzz-task}]
    issues:
      - {title: "Add --verbose", labels: [bzzz-task]}
"""


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    f = start_forge(tmp_path / "forge", seed=SEED)
    yield f
    stop_forge(f)


def make_agent(
    forge: Forge, tmp_path: Path, login: str, run: Callable[[Task], Outcome], **settings: object
) -> GithubAgent:
    state = WorkerState(tmp_path / f"{login}.sqlite3", backoff_initial_s=0.2, backoff_max_s=2.0)
    # A short backoff after a failed or reaped attempt: these tests are about what comes after it.
    options: dict[str, object] = {
        "poll_interval_s": 0.2,
        "settle_s": 0.05,
        "lease_s": 30.0,
        "retry_backoff_s": 0.5,
        **settings,
    }
    return GithubAgent(
        Settings(login, ["alice/tasks"], **options),  # type: ignore[arg-type]
        connect(forge.url, f"{login}-token", pace_s=0, write_pace_s=0),
        state,
        run,
    )


def step_until(agents: list[GithubAgent], done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for agent in agents:
            agent.step()
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def comments(forge: Forge, number: int = 1) -> list[tuple[str, str]]:
    raw = forge.call("GET", f"/repos/alice/tasks/issues/{number}/comments", token="alice-token").json()
    return [(c["user"]["login"], c["body"]) for c in raw]


def outcomes(forge: Forge, number: int = 1) -> list[tuple[str, str]]:
    return [(who, body) for who, body in comments(forge, number) if "Done" in body or "Could not finish" in body]


def quick(task: Task) -> Outcome:
    return Outcome(True, f"did {task.title!r}")


def test_an_agent_claims_works_and_reports_once(forge: Forge, tmp_path: Path) -> None:
    agent = make_agent(forge, tmp_path, "agent-1", quick)
    step_until([agent], lambda: bool(outcomes(forge)) and not agent.held, 20, "the outcome")
    for _ in range(5):
        agent.step()
    assert [who for who, _ in outcomes(forge)] == ["agent-1"]
    assert "did 'Add --verbose'" in outcomes(forge)[0][1]
    issue = forge.call("GET", "/repos/alice/tasks/issues/1").json()
    assert [a["login"] for a in issue["assignees"]] == ["agent-1"]
    agent.close()


def test_github_down_for_a_minute_mid_task_the_task_completes_and_is_reported_once_after(
    forge: Forge, tmp_path: Path
) -> None:
    running, finish = threading.Event(), threading.Event()

    def slow(task: Task) -> Outcome:
        running.set()
        assert finish.wait(120)
        return Outcome(True, "finished during the outage")

    agent = make_agent(forge, tmp_path, "agent-1", slow, lease_s=300.0)
    step_until([agent], running.is_set, 20, "the task to start")
    forge.call("PUT", "/_forge/faults", token="alice-token", json={"outages": [[0, 60]]})
    down_at = time.monotonic()
    finish.set()  # the task completes while GitHub is down
    step_until([agent], lambda: agent.state.counts()["pending"] >= 1, 10, "the finished task's outcome to be queued")
    while time.monotonic() - down_at < 60:
        agent.step()  # keeps trying to deliver: every attempt meets the outage
        assert forge.call("GET", "/user", token="alice-token").status_code == 503 or time.monotonic() - down_at >= 59
        time.sleep(0.5)
    step_until(
        [agent],
        lambda: bool(outcomes(forge)) and not agent.state.counts()["pending"] and not agent.held,
        30,
        "the outcome after the outage",
    )
    for _ in range(10):
        agent.step()
    assert outcomes(forge) == [
        ("agent-1", "✅ Done (`agent-1`): finished during the outage\n" + outcomes(forge)[0][1].split("\n", 1)[1])
    ]
    assert len(outcomes(forge)) == 1
    agent.close()


def test_a_vanished_agents_claim_is_released_after_the_lease_and_taken_by_another(forge: Forge, tmp_path: Path) -> None:
    started, stopped = threading.Event(), threading.Event()

    def forever(task: Task) -> Outcome:
        started.set()
        task.stop.wait(60)
        stopped.set()
        return Outcome(False, "stopped")

    gone = make_agent(forge, tmp_path, "agent-1", forever, lease_s=2.0)
    step_until([gone], started.is_set, 20, "agent-1 to start working")
    # agent-1 vanishes: it stops stepping (no renewals) without letting go.
    peer = make_agent(forge, tmp_path, "agent-2", quick, lease_s=2.0)
    step_until([peer], lambda: bool(outcomes(forge)), 30, "agent-2 to take over and finish")
    assert [who for who, _ in outcomes(forge)] == ["agent-2"]
    released = [body for who, body in comments(forge) if who == "agent-2" and "was released by" in body]
    assert len(released) == 1 and "`agent-1`" in released[0] and "lease ran out" in released[0]
    # agent-1 comes back: it finds its claim gone and stops its task.
    step_until([gone], stopped.is_set, 20, "agent-1 to stop its task")
    step_until([gone], lambda: not gone.held, 20, "agent-1 to drop the claim")
    gone.close()
    peer.close()


def test_a_restarted_agent_resumes_its_claim(forge: Forge, tmp_path: Path) -> None:
    started = threading.Event()

    def never(task: Task) -> Outcome:
        started.set()
        task.stop.wait(60)
        return Outcome(False, "interrupted")

    first = make_agent(forge, tmp_path, "agent-1", never)
    step_until([first], started.is_set, 20, "the first run to start")
    first.close()  # as a kill would: the claim stays in the state file, held
    again = make_agent(forge, tmp_path, "agent-1", quick)
    assert list(again.held) == [("alice/tasks", 1)]
    step_until([again], lambda: bool(outcomes(forge)), 20, "the resumed task's outcome")
    assert [who for who, _ in outcomes(forge)] == ["agent-1"]
    assert len([b for _, b in comments(forge) if "Claimed by" in b]) == 1  # not claimed a second time
    again.close()


def test_a_split_task_opens_its_follow_up_issues_once_and_the_log_hears_of_every_decision(
    forge: Forge, tmp_path: Path
) -> None:
    journal: list[tuple[str, dict[str, object]]] = []

    def split(task: Task) -> Outcome:
        if task.number != 1:
            return Outcome(True, "a part, done")  # follow-ups are tasks too: taken like any other
        return Outcome(True, "split in two", follow_ups=(("Part 1", "the flag"), ("Part 2", "the docs")))

    agent = make_agent(forge, tmp_path, "agent-1", split)
    agent.journal = lambda kind, fields: journal.append((kind, fields))
    step_until(
        [agent],
        lambda: not agent.held and bool(outcomes(forge)) and not agent.state.counts()["pending"],
        20,
        "the split task to be reported",
    )
    for _ in range(5):
        agent.step()
    titles = [i["title"] for i in forge.call("GET", "/repos/alice/tasks/issues?state=all").json()]
    assert sorted(t for t in titles if t.startswith("Part")) == ["Part 1", "Part 2"]
    assert [kind for kind, _ in journal][:2] == ["claim_won", "task_finished"]
    assert journal[0][1]["winner"] == "agent-1" and journal[1][1]["ok"] is True
    agent.close()


def test_a_claim_cut_short_after_assigning_is_finished_by_the_next_poll(forge: Forge, tmp_path: Path) -> None:
    # agent-1 assigned itself and died before reading back: no label, no claim comment.
    forge.call("POST", "/repos/alice/tasks/issues/1/assignees", token="agent-1-token", json={"assignees": ["agent-1"]})
    agent = make_agent(forge, tmp_path, "agent-1", quick)
    step_until([agent], lambda: bool(outcomes(forge)), 20, "the claim to be finished and the task done")
    assert len([b for _, b in comments(forge) if "Claimed by" in b]) == 1
    agent.close()


def test_an_agent_only_takes_what_it_can_do(forge: Forge, tmp_path: Path) -> None:
    forge.call(
        "POST",
        "/repos/alice/tasks/issues",
        token="alice-token",
        json={"title": "Port to Rust", "labels": ["bzzz-task", "needs:tool:cargo"]},
    )
    agent = make_agent(forge, tmp_path, "agent-1", quick, capabilities=Capabilities(tools=["git"]), max_tasks=2)
    step_until([agent], lambda: bool(outcomes(forge, 1)), 20, "issue 1 done")
    for _ in range(5):
        agent.step()
    assert forge.call("GET", "/repos/alice/tasks/issues/2").json()["assignees"] == []
    assert "needs tool 'cargo'" in agent.skipped[("alice/tasks", 2)]
    agent.close()


def test_idle_polls_are_conditional_and_cost_no_rate_limit(forge: Forge, tmp_path: Path) -> None:
    forge.call("PATCH", "/repos/alice/tasks/issues/1", token="alice-token", json={"labels": []})  # nothing to take
    agent = make_agent(forge, tmp_path, "agent-1", quick)
    agent.step()
    poller = agent.pollers["alice/tasks"]
    remaining = poller.budget.remaining
    for _ in range(5):
        time.sleep(0.25)
        agent.step()
    assert poller.not_modified >= 4 and poller.budget.remaining == remaining
    agent.close()
