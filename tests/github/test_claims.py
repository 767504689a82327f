"""Claims: the rule, and agents racing for issues on a forge with latency and jitter injected.

Whether every issue went to exactly one agent is read from the forge's own records (its
assignees, labels, comments and event history), never from what the agents believe.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from bzzz.github.claims import CLAIM_LABEL, MARKER, Claimer, winner
from bzzz.github.client import connect
from tests.forge.harness import Forge, start_forge, stop_forge


def assigned(event_id: int, login: str) -> dict[str, object]:
    return {"id": event_id, "event": "assigned", "assignee": {"login": login}}


def unassigned(event_id: int, login: str) -> dict[str, object]:
    return {"id": event_id, "event": "unassigned", "assignee": {"login": login}}


def test_the_earliest_current_assignment_wins() -> None:
    events = [assigned(7, "b"), assigned(5, "a"), assigned(9, "c")]
    assert winner(["c", "b", "a"], events) == "a"


def test_an_agent_that_left_and_came_back_counts_from_its_return() -> None:
    events = [assigned(1, "a"), assigned(2, "b"), unassigned(3, "a"), assigned(4, "a")]
    assert winner(["a", "b"], events) == "b"


def test_someone_assigned_without_an_event_was_there_first() -> None:
    assert winner(["human", "a"], [assigned(3, "a")]) == "human"


def test_events_of_people_no_longer_assigned_do_not_count() -> None:
    assert winner(["b"], [assigned(1, "a"), assigned(2, "b")]) == "b"
    assert winner([], [assigned(1, "a")]) is None


def test_the_rule_does_not_depend_on_the_order_events_are_read_in() -> None:
    events = [assigned(i, f"agent-{i % 10}") for i in range(1, 40)]
    logins = [f"agent-{i}" for i in range(10)]
    first = winner(logins, events)
    for seed in range(20):
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        assert winner(list(reversed(logins)), shuffled) == first


AGENTS = [f"agent-{n}" for n in range(10)]


def seed_with(issues: int) -> str:
    users = "\n".join(f"  - {{login: {a}, tokens: [{a}-token]}}" for a in AGENTS)
    issue_lines = "\n".join(f"      - {{title: 'Task {n}', labels: [bzzz-task]}}" for n in range(issues))
    return f"""
users:
  - {{login: alice, site_admin: true, tokens: [alice-token]}}
{users}
repos:
  - owner: alice
    name: tasks
    collaborators: {{{", ".join(f"{a}: push" for a in AGENTS)}}}
    labels: [{{name: bzzz-task}}, {{name: "{CLAIM_LABEL}"}}]
    issues:
{issue_lines}
"""


def race(forge: Forge, agents: list[str], settle_s: float) -> dict[str, list[int]]:
    """Every agent claims what it can until nothing unclaimed is left; who believes it won what."""
    won: dict[str, list[int]] = {a: [] for a in agents}
    errors: list[BaseException] = []
    start = threading.Barrier(len(agents))

    def run(agent: str) -> None:
        try:
            claimer = Claimer(connect(forge.url, f"{agent}-token", pace_s=0, write_pace_s=0), agent, settle_s=settle_s)
            order = random.Random(agent)
            start.wait()
            while True:
                _, open_issues = claimer.github.requester.requestJsonAndCheck(
                    "GET", "/repos/alice/tasks/issues", {"state": "open", "assignee": "none", "per_page": 100}
                )
                free = [i["number"] for i in open_issues]
                if not free:
                    return
                order.shuffle(free)
                for number in free[:5]:
                    if claimer.try_claim("alice/tasks", number).won:
                        won[agent].append(number)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=run, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    return won


def forge_records(forge: Forge, issues: int) -> dict[int, dict[str, object]]:
    gh = forge.github("alice-token")
    records = {}
    for n in range(1, issues + 1):
        raw = gh.requester.requestJsonAndCheck("GET", f"/repos/alice/tasks/issues/{n}")[1]
        events = []
        page = 1
        while True:
            batch = gh.requester.requestJsonAndCheck(
                "GET", f"/repos/alice/tasks/issues/{n}/events", {"per_page": 100, "page": page}
            )[1]
            events += batch
            if len(batch) < 100:
                break
            page += 1
        comments = gh.requester.requestJsonAndCheck("GET", f"/repos/alice/tasks/issues/{n}/comments")[1]
        records[n] = {
            "assignees": [a["login"] for a in raw["assignees"]],
            "labels": [label["name"] for label in raw["labels"]],
            "events": events,
            "claim_comments": [c["user"]["login"] for c in comments if "bzzz:claim agent=" in c["body"]],
        }
    return records


@pytest.fixture
def contended(tmp_path: Path):
    forge = start_forge(
        tmp_path / "forge", "--latency-ms", "20", "--jitter-ms", "15", "--fault-seed", "1", seed=seed_with(200)
    )
    yield forge
    stop_forge(forge)


def test_ten_agents_racing_over_200_issues_claim_each_exactly_once(contended: Forge) -> None:
    won = race(contended, AGENTS, settle_s=0.05)
    contended.call("PUT", "/_forge/faults", token="alice-token", json={})  # the check needs no latency
    records = forge_records(contended, 200)
    for number, record in records.items():
        holders = record["assignees"]
        assert len(holders) == 1, f"issue {number} is held by {holders}"  # type: ignore[arg-type]
        [holder] = holders  # type: ignore[misc]
        assert winner(holders, record["events"]) == holder  # type: ignore[arg-type]
        assert record["claim_comments"] == [holder], f"issue {number}: claim comments {record['claim_comments']}"
        assert CLAIM_LABEL in record["labels"]  # type: ignore[operator]
        believers = [a for a, numbers in won.items() if number in numbers]
        assert believers == [holder], f"issue {number}: {believers} believe they won, the forge says {holder}"
    contention = sum(
        1
        for r in records.values()
        if len({e["assignee"]["login"] for e in r["events"] if e["event"] == "assigned"}) > 1
    )  # type: ignore[union-attr,index]
    print(f"\n{contention} of 200 issues were contended; claims per agent: {sorted(len(v) for v in won.values())}")
    assert contention > 0, "no two agents ever met: the test did not test contention"


def test_an_expired_lease_is_released_by_a_peer_and_the_issue_taken_again(tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=seed_with(1))
    try:
        gone = Claimer(
            connect(forge.url, "agent-1-token", pace_s=0, write_pace_s=0), "agent-1", lease_s=1.0, settle_s=0
        )
        peer = Claimer(
            connect(forge.url, "agent-2-token", pace_s=0, write_pace_s=0),
            "agent-2",
            lease_s=1.0,
            settle_s=0,
            backoff_s=0,
        )  # no wait after the reaped attempt: this test is about the lease
        assert gone.try_claim("alice/tasks", 1).won
        assert gone.renew("alice/tasks", 1)
        assert peer.expired_holder("alice/tasks", 1, ["agent-1"]) is None  # just renewed: alive
        # agent-1 vanished: no renewals. GitHub's clock (the Date header, whole seconds, and
        # uvicorn's up to a second stale) moves on past the lease.
        time.sleep(3.5)
        assert peer.expired_holder("alice/tasks", 1, ["agent-1"]) == "agent-1"
        peer.release("alice/tasks", 1, "its lease ran out", holder="agent-1")
        assert peer.try_claim("alice/tasks", 1).won
        assert not gone.renew("alice/tasks", 1)  # the vanished agent, back, learns it lost the claim
        assert not gone.verify("alice/tasks", 1)
        record = forge_records(forge, 1)[1]
        assert record["assignees"] == ["agent-2"] and record["claim_comments"] == ["agent-2"]
        kinds = [(e["event"], e["assignee"]["login"]) for e in record["events"] if "assign" in e["event"]]  # type: ignore[union-attr,index]
        assert kinds == [("assigned", "agent-1"), ("unassigned", "agent-1"), ("assigned", "agent-2")]
    finally:
        stop_forge(forge)


def test_a_human_assignee_means_hands_off(tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=seed_with(1))
    try:
        forge.call("POST", "/repos/alice/tasks/issues/1/assignees", token="alice-token", json={"assignees": ["alice"]})
        result = Claimer(
            connect(forge.url, "agent-1-token", pace_s=0, write_pace_s=0), "agent-1", settle_s=0
        ).try_claim("alice/tasks", 1)
        assert not result.won and "already assigned to alice" in result.reason
    finally:
        stop_forge(forge)


def test_marker_names_the_agent() -> None:
    assert MARKER.format(agent="agent-3") == "<!-- bzzz:claim agent=agent-3 -->"
