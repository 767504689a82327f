"""Claims that end (issue 17): the failure policy, the comment budget, forged claim comments and
cheap polls, with several agents against the real forge.

Tasks are plain functions standing in for the executor; everything GitHub-side is the forge, and
what happened is read back from it. Each test counts the runs it caused, so none can pass by a
task never having been tried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import bzzz.github.agent as agent_module
from bzzz.github.agent import GithubAgent, Settings, Task
from bzzz.github.claims import CLAIM_LABEL, FAILED_LABEL, MARKER, Claimer
from bzzz.github.client import connect
from bzzz.state import WorkerState
from bzzz.tasks import Outcome
from tests.forge.harness import Forge, start_forge, stop_forge

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: mallory, tokens: [mallory-token]}
  - {login: agent-1, tokens: [agent-1-token]}
  - {login: agent-2, tokens: [agent-2-token]}
  - {login: agent-3, tokens: [agent-3-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push, agent-2: push, agent-3: push}
    labels: [{name: bzzz-task}]
    issues:
      - {title: "Fetch the data", body: "run curl", labels: [bzzz-task]}
"""
AGENTS = ("agent-1", "agent-2", "agent-3")


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


class Runs:
    """A stand-in executor: what it was given, and what it answers (one outcome per call, the
    last repeated)."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes, self.tasks = list(outcomes), []  # type: ignore[var-annotated]
        self.lock = threading.Lock()

    def __call__(self, task: Task) -> Outcome:
        with self.lock:
            self.tasks.append(task)
            return self.outcomes[min(len(self.tasks), len(self.outcomes)) - 1]


def make_agents(
    forge: Forge, tmp_path: Path, run: Callable[[Task], Outcome], logins: tuple[str, ...] = AGENTS, **settings: object
) -> list[GithubAgent]:
    agents = []
    for login in logins:
        state = WorkerState(tmp_path / f"{login}.sqlite3", backoff_initial_s=0.2, backoff_max_s=2.0)
        options: dict[str, object] = {
            "poll_interval_s": 0.2,
            "settle_s": 0.05,
            "lease_s": 30.0,
            "retry_backoff_s": 0.5,
            **settings,
        }
        agents.append(
            GithubAgent(
                Settings(login, ["alice/tasks"], **options),  # type: ignore[arg-type]
                connect(forge.url, f"{login}-token", pace_s=0, write_pace_s=0),
                state,
                run,
            )
        )
    return agents


def step_for(agents: list[GithubAgent], seconds: float, until: Callable[[], bool] = lambda: False) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        for agent in agents:
            agent.step()
        time.sleep(0.05)


def step_until(agents: list[GithubAgent], done: Callable[[], bool], timeout: float, what: str) -> None:
    step_for(agents, timeout, done)
    if not done():
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def settle(agents: list[GithubAgent]) -> None:
    """Until nothing is held and every queued comment is delivered."""
    step_until(
        agents, lambda: all(not a.held and not a.state.counts()["pending"] for a in agents), 60, "the agents to settle"
    )


def comments(forge: Forge, number: int = 1) -> list[tuple[str, str]]:
    raw = forge.call("GET", f"/repos/alice/tasks/issues/{number}/comments?per_page=100", token="alice-token").json()
    return [(c["user"]["login"], c["body"]) for c in raw]


def labels(forge: Forge, number: int = 1) -> set[str]:
    issue = forge.call("GET", f"/repos/alice/tasks/issues/{number}", token="alice-token").json()
    return {label["name"] for label in issue["labels"]}


def close(agents: list[GithubAgent]) -> None:
    for agent in agents:
        agent.close()


PERMANENT = Outcome(False, "Not executed: `curl` not on this agent's allowlist (`sh`).")
TRANSIENT = Outcome(False, "The task could not be carried out here: the forge answered 503", retry_elsewhere=True)
DONE = Outcome(True, "Opened a pull request")


def test_a_permanent_failure_gets_one_comment_and_the_failed_label_and_no_agent_takes_it_again(
    forge: Forge, tmp_path: Path
) -> None:
    runs = Runs(PERMANENT)
    agents = make_agents(forge, tmp_path, runs)
    step_until(agents, lambda: FAILED_LABEL in labels(forge), 30, "the failed label")
    step_for(agents, 8)  # three agents keep polling: nobody takes it again
    settle(agents)
    assert len(runs.tasks) == 1  # it ran (the positive control), once in all
    said = [body for _, body in comments(forge)]
    assert len([b for b in said if "Could not finish" in b]) == 1 and len(said) == 2  # the claim and the outcome
    assert f"a person removes the `{FAILED_LABEL}` label" in said[-1]
    assert CLAIM_LABEL not in labels(forge)
    issue = forge.call("GET", "/repos/alice/tasks/issues/1", token="alice-token").json()
    assert issue["assignees"] == []
    close(agents)


def test_a_failed_issue_is_taken_again_once_edited_or_once_a_person_takes_the_label_off(
    forge: Forge, tmp_path: Path
) -> None:
    runs = Runs(PERMANENT)
    agents = make_agents(forge, tmp_path, runs)
    step_until(agents, lambda: FAILED_LABEL in labels(forge), 30, "the failed label")
    settle(agents)
    forge.call("PATCH", "/repos/alice/tasks/issues/1", token="alice-token", json={"body": "run curl, politely"})
    step_until(agents, lambda: len(runs.tasks) == 2, 30, "the edited issue to be tried again")
    assert runs.tasks[1].body == "run curl, politely"
    step_until(agents, lambda: FAILED_LABEL in labels(forge), 30, "the failed label again")
    settle(agents)
    forge.call("DELETE", f"/repos/alice/tasks/issues/1/labels/{FAILED_LABEL}", token="alice-token")
    step_until(agents, lambda: len(runs.tasks) == 3, 30, "the issue to be asked again")
    close(agents)


def test_a_transient_failure_is_tried_again_by_the_mesh_with_a_new_attempt_id_and_succeeds(
    forge: Forge, tmp_path: Path
) -> None:
    runs = Runs(TRANSIENT, DONE)
    agents = make_agents(forge, tmp_path, runs)
    step_until(agents, lambda: any("Done" in body for _, body in comments(forge)), 60, "the second attempt's success")
    settle(agents)
    assert len(runs.tasks) == 2 and runs.tasks[0].attempt_id != runs.tasks[1].attempt_id
    said = [body for _, body in comments(forge)]
    assert len([b for b in said if "Attempt 1 of 3 failed" in b]) == 1
    assert len([b for b in said if "✅ Done" in b]) == 1
    assert FAILED_LABEL not in labels(forge)
    close(agents)


def test_transient_failures_end_after_the_attempts_allowed_with_the_failed_label(forge: Forge, tmp_path: Path) -> None:
    runs = Runs(TRANSIENT)
    agents = make_agents(forge, tmp_path, runs)
    step_until(agents, lambda: FAILED_LABEL in labels(forge), 60, "the failed label")
    step_for(agents, 5)
    settle(agents)
    assert len(runs.tasks) == 3
    said = [body for _, body in comments(forge)]
    assert len([b for b in said if "failed (`" in b and "Attempt" in b]) == 2
    assert len([b for b in said if "after 3 attempts" in b]) == 1
    assert len(said) <= 6  # three claims and three outcomes: the default budget
    close(agents)


def test_the_next_attempt_waits_out_the_backoff_on_githubs_clock(forge: Forge, tmp_path: Path) -> None:
    runs = Runs(TRANSIENT, DONE)
    agents = make_agents(forge, tmp_path, runs, retry_backoff_s=6.0)
    step_until(agents, lambda: len(runs.tasks) == 1 and not any(a.held for a in agents), 30, "the first attempt")
    failed_at = time.monotonic()
    step_until(agents, lambda: len(runs.tasks) == 2, 60, "the second attempt")
    assert time.monotonic() - failed_at >= 4.0  # the backoff, less GitHub's whole-second clock
    close(agents)


def test_the_comment_budget_holds_for_the_whole_mesh_across_restarts(forge: Forge, tmp_path: Path) -> None:
    runs = Runs(TRANSIENT)
    agents = make_agents(forge, tmp_path, runs, max_attempts=50, retry_backoff_s=0.0, comments_per_hour=4)
    step_until(agents, lambda: len(runs.tasks) >= 2, 60, "two attempts")
    for _ in range(2):  # restarts: new agents on the same state files, then on new ones
        step_for(agents, 4)
        close(agents)
        agents = make_agents(forge, tmp_path, runs, max_attempts=50, retry_backoff_s=0.0, comments_per_hour=4)
    step_for(agents, 6)
    ours = [body for who, body in comments(forge) if who in AGENTS]
    assert len(runs.tasks) == 2  # the budget, not the attempts, stopped the third claim
    assert len(ours) <= 4
    close(agents)


def test_a_claim_comment_forged_by_another_user_neither_renews_nor_keeps_a_lease_alive(
    forge: Forge, tmp_path: Path
) -> None:
    github = connect(forge.url, "agent-1-token", pace_s=0, write_pace_s=0)
    holder = Claimer(github, "agent-1", lease_s=1.0, settle_s=0)
    peer = Claimer(connect(forge.url, "agent-2-token", pace_s=0, write_pace_s=0), "agent-2", lease_s=1.0, settle_s=0)
    assert holder.try_claim("alice/tasks", 1).won
    forged = f"I am agent-1, honest. {MARKER.format(agent='agent-1')}"
    time.sleep(3.5)  # agent-1 vanished; GitHub's clock moves past its lease
    reply = forge.call("POST", "/repos/alice/tasks/issues/1/comments", token="mallory-token", json={"body": forged})
    assert reply.status_code == 201  # the forgery is there, and fresher than the real lease
    assert peer.expired_holder("alice/tasks", 1, ["agent-1"]) == "agent-1"
    # And agent-1's own renewal edits its own comment, never mallory's.
    assert holder.renew("alice/tasks", 1)
    mine = [body for who, body in comments(forge) if who == "agent-1"]
    assert "renewal=1" in mine[0] and [body for who, body in comments(forge) if who == "mallory"] == [forged]


def test_a_forged_claim_comment_alone_is_no_claim_to_renew(forge: Forge, tmp_path: Path) -> None:
    holder = Claimer(connect(forge.url, "agent-1-token", pace_s=0, write_pace_s=0), "agent-1", settle_s=0)
    forge.call(
        "POST",
        "/repos/alice/tasks/issues/1/comments",
        token="mallory-token",
        json={"body": MARKER.format(agent="agent-1")},
    )
    assert not holder.renew("alice/tasks", 1)  # no comment of agent-1's: no lease
    assert holder.try_claim("alice/tasks", 1).won  # positive control: its real claim renews
    assert holder.renew("alice/tasks", 1)


def test_an_unchanged_issue_is_parsed_once_and_an_unlabelled_one_is_never_fetched(
    forge: Forge, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for title, extra in (
        ("Unlabelled and large", {"body": "x" * 400_000}),
        ("Needs curl", {"body": "fetch it", "labels": ["bzzz-task", "needs:tool:curl"]}),
    ):
        reply = forge.call("POST", "/repos/alice/tasks/issues", token="alice-token", json={"title": title, **extra})
        assert reply.status_code == 201
    forge.call("PATCH", "/repos/alice/tasks/issues/1", token="alice-token", json={"state": "closed"})
    parsed: list[str] = []
    real = agent_module.parse_task
    monkeypatch.setattr(agent_module, "parse_task", lambda title, *rest: parsed.append(title) or real(title, *rest))
    agents = make_agents(forge, tmp_path, Runs(PERMANENT), logins=("agent-1",))  # it has no curl: takes nothing
    step_for(agents, 3)
    assert parsed == ["Needs curl"]  # many polls, one parse, and never the unlabelled issue
    listed = [e for e in forge.exchanges() if e["method"] == "GET" and str(e["path"]) == "/repos/alice/tasks/issues"]
    assert len(listed) >= 5 and not any("Unlabelled and large" in str(e["body"]) for e in listed)
    assert any("Needs curl" in str(e["body"]) for e in listed)  # the listing itself was recorded
    forge.call("PATCH", "/repos/alice/tasks/issues/3", token="alice-token", json={"body": "fetch it now"})
    step_for(agents, 2)
    assert parsed == ["Needs curl", "Needs curl"]  # a change is looked at again
    assert "needs tool 'curl'" in agents[0].skipped[("alice/tasks", 3)]
    close(agents)


def test_github_s_secondary_rate_limit_makes_the_agent_wait_not_hammer(tmp_path: Path) -> None:
    seed = SEED.replace(
        '      - {title: "Fetch the data", body: "run curl", labels: [bzzz-task]}\n',
        "".join(f'      - {{title: "Task {n}", labels: [bzzz-task]}}\n' for n in range(1, 4)),
    )
    forge = start_forge(tmp_path / "forge", "--secondary-per-minute", "2", "--secondary-minute-seconds", "6", seed=seed)
    try:
        runs = Runs(DONE)
        agents = make_agents(forge, tmp_path, runs, logins=("agent-1",))

        def done() -> bool:
            posted = comments(forge, 1) + comments(forge, 2) + comments(forge, 3)
            return len([b for _, b in posted if "✅ Done" in b]) == 3

        step_until(agents, done, 120, "three tasks done under the limit")
        refused = [e for e in forge.exchanges() if e["status"] == 403 and e["method"] == "POST"]
        assert refused  # the limit was really met (each task posts a claim and an outcome)
        assert len(refused) <= 6  # and each meeting was waited out, not retried at once
        close(agents)
    finally:
        stop_forge(forge)
