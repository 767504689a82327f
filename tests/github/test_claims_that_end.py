"""Claims that end, with real agents (supervisor, log, github and executor workers) on the forge:
a task that can never run leaves a handful of comments however long three agents poll it, and
an agent stopped with `bzzz ctl shutdown` gives its claims back for another to finish."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from bzzz.executor.sandbox import clean_stale
from tests.issues import github_and_executor, open_issue, token_for, wait_for_comment

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

AGENTS = ("agent-1", "agent-2", "agent-3")


def issue(forge: Any, number: int) -> dict[str, Any]:
    reply: dict[str, Any] = forge.call("GET", f"/repos/alice/tasks/issues/{number}", token="alice-token").json()
    return reply


def comments(forge: Any, number: int) -> list[dict[str, Any]]:
    reply: list[dict[str, Any]] = forge.call(
        "GET", f"/repos/alice/tasks/issues/{number}/comments?per_page=100", token="alice-token"
    ).json()
    return reply


def test_three_agents_on_a_task_that_can_never_run_leave_a_handful_of_comments(
    start_agent, forge: Any, tmp_path: Path
) -> None:
    for login in AGENTS:
        start_agent(github_and_executor(forge.url, login, token_for(tmp_path, login)), name=login)
    number = open_issue(forge, "Fetch the data", '```bzzz-task\nrun: ["curl -o data.json https://example.com"]\n```\n')
    bodies = wait_for_comment(forge, number, "Could not finish", timeout=120)
    assert any("`curl`" in b and "allowlist" in b for b in bodies)  # it reached an executor, which refused it
    # What the review saw at 115 comments a minute: the agents poll every 0.3 s meanwhile.
    time.sleep(30)
    said = comments(forge, number)
    assert len(said) <= 6, [c["body"] for c in said]
    assert len([c for c in said if "Could not finish" in c["body"]]) == 1
    assert "bzzz-failed" in {label["name"] for label in issue(forge, number)["labels"]}


def test_an_agent_shut_down_gives_its_claim_back_and_another_agent_finishes_it(
    start_agent, forge: Any, tmp_path: Path
) -> None:
    slow = start_agent(github_and_executor(forge.url, "agent-1", token_for(tmp_path, "agent-1")), name="agent-1")
    number = open_issue(
        forge, "Take your time", "```bzzz-task\nrun: [\"sh -c 'sleep 20; echo slow > SLOW.md'\"]\n```\n"
    )
    wait_for_comment(forge, number, "Claimed by `agent-1`", timeout=60)
    slow.call("shutdown")
    assert slow.process.wait(60) == 0
    # Its executor was stopped mid-task: the task's area is left for the next start to clean,
    # and there is no next start here.
    clean_stale(slow.data_dir / "workspaces")
    given_back = issue(forge, number)
    assert given_back["assignees"] == [] and "bzzz:claimed" not in {x["name"] for x in given_back["labels"]}
    ended = [c["body"] for c in comments(forge, number) if c["user"]["login"] == "agent-1"]
    assert any("released by this agent: the agent stopped" in body for body in ended)
    start_agent(github_and_executor(forge.url, "agent-2", token_for(tmp_path, "agent-2")), name="agent-2")
    bodies = wait_for_comment(forge, number, "✅ Done (`agent-2`)", timeout=120)
    assert not any("✅ Done (`agent-1`)" in b for b in bodies)
    pulls = forge.call("GET", "/repos/alice/tasks/pulls?state=all", token="alice-token").json()
    assert [pull["user"]["login"] for pull in pulls] == ["agent-2"]


def test_a_task_whose_push_meets_an_outage_is_attempted_again_and_proposed_once(
    start_agent, forge: Any, tmp_path: Path
) -> None:
    for login in AGENTS[:2]:
        start_agent(github_and_executor(forge.url, login, token_for(tmp_path, login)), name=login)
    number = open_issue(forge, "Write slowly", "```bzzz-task\nrun: [\"sh -c 'sleep 4; echo slow > SLOW.md'\"]\n```\n")
    wait_for_comment(forge, number, "🐝 Claimed by", timeout=60)
    # GitHub goes down while the command runs: the push, the release and the comments meet it.
    assert forge.call("PUT", "/_forge/faults", token="alice-token", json={"outages": [[0, 8]]}).status_code == 200
    deadline = time.monotonic() + 180
    bodies: list[str] = []
    while time.monotonic() < deadline and not any("✅ Done" in b for b in bodies):
        time.sleep(0.5)
        reply = forge.call("GET", f"/repos/alice/tasks/issues/{number}/comments?per_page=100", token="alice-token")
        if reply.status_code == 200:  # the outage answers 503 to the test too
            bodies = [c["body"] for c in reply.json()]
    assert len([b for b in bodies if "Attempt 1 of 3 failed" in b]) == 1  # the outage did fail attempt 1
    assert len([b for b in bodies if "✅ Done" in b]) == 1
    pulls = forge.call("GET", "/repos/alice/tasks/pulls?state=all", token="alice-token").json()
    assert len(pulls) == 1
