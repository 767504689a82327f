"""`bzzz_claims_total{outcome}` and `bzzz_tasks{state}` of a real agent's github worker, as its
`/metrics` shows them: a claim race lost to a peer, then one won and its task done.

The race is made to happen, not hoped for: the forge answers every request after a delay, and
once the agent has read the issue (unassigned) the test assigns a peer, whose assignment event
is then earlier than the agent's own. By the claim rule (`bzzz.github.claims.winner`) the peer
holds the issue and the agent loses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agents import wait_until
from tests.forge.harness import Forge, start_forge, stop_forge
from tests.metrics.harness import LOG, METRICS, github_worker, scraped

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
"""
LATENCY_MS = 3000  # per request: the peer's assignment (one delay) lands well before the agent's (two more)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


def read_the_issue(forge: Forge, number: int) -> bool:
    return any(
        e.get("method") == "GET" and e.get("path") == f"/repos/alice/tasks/issues/{number}" for e in forge.exchanges()
    )


def open_issue(forge: Forge, title: str) -> int:
    made = forge.call(
        "POST", "/repos/alice/tasks/issues", token="alice-token", json={"title": title, "labels": ["bzzz-task"]}
    )
    assert made.status_code == 201, made.text
    return int(made.json()["number"])


def faults(forge: Forge, **settings: object) -> None:
    assert forge.call("PUT", "/_forge/faults", token="alice-token", json=settings).status_code == 200


def test_a_lost_race_and_a_won_claim_are_counted_by_outcome(start_agent, forge: Forge, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("agent-1-token\n")
    agent = start_agent(
        {
            "log": LOG,
            "github": github_worker(forge.url, token_file, settle_s=1.0),
            "executor": {"module": "bzzz.testing.probe", "args": ["--executor", "0.2"]},
        },
        extra=METRICS,
    )
    agent.wait_running("github", timeout=60)
    start = scraped(agent, lambda s: s.get("bzzz_claims_total", outcome="lost") == 0, 30, "the claims counted from 0")
    assert start.get("bzzz_claims_total", outcome="won") == 0 and start.get("bzzz_tasks", state="claimed") == 0

    faults(forge, latency_ms=LATENCY_MS)
    contested = open_issue(forge, "Contested")
    wait_until(lambda: read_the_issue(forge, contested), 60, "the agent reading the issue before claiming it")
    # The agent saw it unassigned and will assign itself (after reading the events): the peer is first.
    peer = forge.call(
        "POST",
        f"/repos/alice/tasks/issues/{contested}/assignees",
        token="agent-2-token",
        json={"assignees": ["agent-2"]},
    )
    assert peer.status_code == 201, peer.text
    lost = scraped(agent, lambda s: s.get("bzzz_claims_total", outcome="lost") == 1, 120, "the lost race counted")
    assert lost.get("bzzz_claims_total", outcome="won") == 0
    events = forge.call("GET", f"/repos/alice/tasks/issues/{contested}/events", token="alice-token").json()
    assigned = [e["assignee"]["login"] for e in events if e["event"] == "assigned"]
    assert assigned == ["agent-2", "agent-1"]  # the agent really raced, and came second

    faults(forge)
    free = open_issue(forge, "Uncontested")
    done = scraped(
        agent,
        lambda s: s.get("bzzz_claims_total", outcome="won") == 1 and s.get("bzzz_tasks", state="done") == 1,
        60,
        "the won claim and its task done",
    )
    assert done.get("bzzz_claims_total", outcome="lost") == 1
    assert done.get("bzzz_tasks", state="claimed") == 0  # done, so no longer held
    issue = forge.call("GET", f"/repos/alice/tasks/issues/{free}", token="alice-token").json()
    assert [a["login"] for a in issue["assignees"]] == ["agent-1"]
