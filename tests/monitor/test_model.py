"""The monitor's model as a specification: capability snapshots and log entries in, agents,
topology, task timelines and threaded discussions out, incrementally, with every peer string
capped. No network: plain data in, plain data out."""

from __future__ import annotations

import json
from typing import Any

from bzzz.monitor.model import ZERO_KEY, MonitorModel, entry_view, task_state, threaded
from bzzz.monitor.settings import MonitorSettings

KEY_A = "a" * 64
KEY_B = "b" * 64
ME = "12D3KooWmonitor"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def peer(peer_id: str, node_id: str, key: str, connected: list[str] = (), **caps: Any) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "peer_id": peer_id,
        "node_id": node_id,
        "age_s": 0.1,
        "capabilities": {
            "node_id": node_id,
            "peer_id": peer_id,
            "models": ["tiny"],
            "tools": ["git"],
            "load_permille": 10,
            "active_tasks": 0,
            "max_tasks": 1,
            "log_key": key,
            "version": "0.1.0",
            "connected": list(connected),
            "log_length": 0,
            **caps,
        },
    }


def status(*peers: dict[str, Any], connected: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"peer_id": ME, "node_id": "monitor", "connected": list(connected), "peers": list(peers)}


def event(kind: str, ts: int, node: str = "alpha", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "ts": ts, "node_id": node, "agent": node, **fields}


def task_events(model: MonitorModel, key: str, *entries: dict[str, Any], start: int = 0) -> None:
    for n, entry in enumerate(entries):
        model.index(key, start + n, entry)


def meta(msg_id: str, parent: str | None, text: str, *, sent: bool = True, node: str = "alpha", ts: int = 1) -> dict:
    return event(
        "hmmm_message",
        ts,
        node,
        direction="sent" if sent else "received",
        message_type="meta_msg",
        topic="bzzz/meta/issue/acme/widgets/7",
        msg_id=msg_id,
        from_node=node,
        hop_count=0,
        sent_ts=ts,
        issue_id="acme/widgets#7",
        parent_id=parent,
        query_type="plan" if parent is None else "objection",
        text=text,
        parameters={},
    )


# --- agents and topology ---------------------------------------------------------------------


def test_agents_are_listed_from_the_peer_table_and_shown_gone_then_back_when_they_return() -> None:
    clock = Clock()
    model = MonitorModel(clock=clock)
    alpha = peer("P1", "alpha", KEY_A, log_length=5)
    model.observe_mesh(status(alpha, peer("P2", "beta", KEY_B)))
    rows = {a["node_id"]: a for a in model.agents_view()}
    assert rows["alpha"]["live"] and rows["beta"]["live"]
    assert rows["alpha"]["log_key"] == KEY_A and rows["alpha"]["log_length"] == 5
    assert rows["alpha"]["replica_length"] == 0 and rows["alpha"]["lag"] == 5
    model.take_changes()

    model.observe_mesh(status(alpha))  # beta expired from the mesh's peer table
    assert {a["node_id"]: a["live"] for a in model.agents_view()} == {"alpha": True, "beta": False}
    changes = model.take_changes()
    assert [(c.event, c.data["node_id"], c.data["live"]) for c in changes if c.event == "agents"] == [
        ("agents", "beta", False)
    ]

    model.observe_mesh(status(alpha, peer("P2", "beta", KEY_B)))
    assert all(a["live"] for a in model.agents_view())
    assert ("agents", "P2") in {(c.event, c.key) for c in model.take_changes()}


def test_an_unchanged_peer_table_makes_no_change_events() -> None:
    model = MonitorModel()
    snapshot = status(peer("P1", "alpha", KEY_A))
    model.observe_mesh(snapshot)
    assert not model.agents_view()[0]["truncated"]
    assert model.take_changes()  # control: the first sight is news
    model.observe_mesh(snapshot)
    assert model.take_changes() == []


def test_the_replica_length_gives_the_lag_against_the_advertised_length() -> None:
    model = MonitorModel()
    model.observe_mesh(status(peer("P1", "alpha", KEY_A, log_length=100)))
    model.observe_log(KEY_A, 60)
    (row,) = model.agents_view()
    assert (row["replica_length"], row["lag"]) == (60, 40)
    changes = model.take_changes()
    assert {"key": KEY_A, "length": 60} in [c.data for c in changes if c.event == "log"]


def test_topology_edges_come_from_each_live_agents_connections_and_the_monitors_own() -> None:
    model = MonitorModel()
    model.observe_mesh(
        status(
            peer("P1", "alpha", KEY_A, connected=["P2", ME, "P-unknown"]),
            peer("P2", "beta", KEY_B, connected=["P1"]),
            connected=["P1"],
        )
    )
    topology = model.topology()
    assert {(n["peer_id"], n["monitor"]) for n in topology["nodes"]} == {("P1", False), ("P2", False), (ME, True)}
    # One edge per pair, however many sides advertise it; none to a node nobody has heard of.
    assert sorted(map(tuple, topology["edges"])) == sorted([("P1", "P2"), tuple(sorted(["P1", ME]))])

    model.observe_mesh(status(peer("P1", "alpha", KEY_A, connected=[ME]), connected=["P1"]))  # beta gone
    nodes = {n["peer_id"]: n["live"] for n in model.topology()["nodes"]}
    assert nodes == {"P1": True, "P2": False, ME: True}
    assert model.topology()["edges"] == [sorted(["P1", ME])]


def test_a_node_without_a_log_of_its_own_is_not_followed() -> None:
    model = MonitorModel()
    model.observe_mesh(status(peer("P1", "other-monitor", ZERO_KEY), peer("P2", "alpha", KEY_A)))
    assert list(model.logs) == [KEY_A]


# --- tasks -----------------------------------------------------------------------------------


def test_a_task_moves_from_contended_through_claimed_discussing_executing_to_its_pr() -> None:
    model = MonitorModel()
    issue = {"repo": "acme/widgets", "issue": 7}
    model.index(KEY_B, 0, event("claim_lost", 10, "beta", winner="alpha", contenders=["alpha", "beta"], **issue))

    def state() -> str:
        return str(model.tasks_page()["tasks"][0]["state"])

    assert state() == "contended"
    task_events(
        model,
        KEY_A,
        event("claim_won", 11, winner="alpha", contenders=["alpha", "beta"], **issue),
        event("task_started", 12, commands=["make"], **issue),
    )
    assert state() == "executing"
    model.index(KEY_A, 2, meta("1" * 32, None, "Plan: run make", ts=13))
    assert state() == "discussing"
    task_events(
        model,
        KEY_A,
        event("task_discussed", 14, proceed=True, revision=0, reason="no objection", **issue),
        event("task_executed", 15, commit="abc", branch="bzzz/7", **issue),
        start=3,
    )
    assert state() == "executing"
    summary = "Opened http://127.0.0.1:1/acme/widgets/pull/3 with the result of `make`."
    model.index(KEY_A, 5, event("task_finished", 16, ok=True, status="done", summary=summary, **issue))
    (task,) = model.tasks_page()["tasks"]
    assert task["state"] == "pr" and task["claimant"] == "alpha"
    assert task["pr_url"] == "http://127.0.0.1:1/acme/widgets/pull/3"
    assert [e["kind"] for e in task["events"]] == [
        "claim_lost",
        "claim_won",
        "task_started",
        "hmmm_message",
        "task_discussed",
        "task_executed",
        "task_finished",
    ]
    assert task["events"][1] == {**task["events"][1], "log_key": KEY_A, "index": 0, "node_id": "alpha"}


def test_events_from_different_logs_are_ordered_by_time_not_by_arrival() -> None:
    model = MonitorModel()
    issue = {"repo": "acme/widgets", "issue": 7}
    model.index(KEY_A, 0, event("task_finished", 30, ok=False, status="released", summary="no", **issue))
    model.index(KEY_B, 0, event("claim_won", 20, "beta", winner="beta", contenders=["beta"], **issue))
    (task,) = model.tasks_page()["tasks"]
    assert [e["kind"] for e in task["events"]] == ["claim_won", "task_finished"]
    assert task["state"] == "released"


def test_task_state_machine_endings() -> None:
    def ev(kind: str, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "node_id": "alpha", **extra}

    assert task_state([ev("claim_won"), ev("task_failed")])[0] == "failed"
    assert task_state([ev("claim_won"), ev("task_finished", ok=False, status="failed")])[0] == "failed"
    assert task_state([ev("claim_won"), ev("lease_reaped")])[0] == "released"
    assert task_state([ev("claim_won"), ev("escalation")])[0] == "escalated"
    assert task_state([ev("claim_won"), ev("task_discussed", proceed=False)])[0] == "discussing"
    # Released, then claimed again by another agent: the new claim counts.
    again = task_state([ev("claim_won"), ev("lease_reaped"), {"kind": "claim_won", "node_id": "beta"}])
    assert again[:2] == ("claimed", "beta")
    # A lost claim after the win does not take the claim back.
    assert task_state([ev("claim_won"), ev("claim_lost")])[0] == "claimed"
    assert task_state([])[0] == "discovered"


def test_an_escalation_from_the_writers_own_log_marks_the_task_escalated() -> None:
    model = MonitorModel()
    model.index(KEY_A, 0, event("claim_won", 1, repo="acme/widgets", issue=7, winner="a", contenders=["a"]))
    escalation = event(
        "hmmm_message",
        2,
        direction="sent",
        message_type="escalation",
        msg_id="2" * 32,
        from_node="alpha",
        payload={"issue_id": "acme/widgets#7", "reason": "the plan was objected to", "summary": "", "messages": []},
    )
    model.index(KEY_A, 1, escalation)
    (task,) = model.tasks_page()["tasks"]
    assert task["state"] == "escalated" and task["events"][-1]["detail"] == "the plan was objected to"


def test_entries_that_name_no_issue_make_no_task() -> None:
    model = MonitorModel()
    task_events(
        model,
        KEY_A,
        event("claim_won", 1, repo="acme/widgets", issue="7"),  # a string is not an issue number
        event("claim_won", 2, repo="<script>/x", issue=7),
        event("claim_won", 3, repo="acme/widgets", issue=-1),
        event("worker_started", 4),
        "not json",  # type: ignore[arg-type]
        b"\xff",  # type: ignore[arg-type]
    )
    assert model.tasks_page() == {"total": 0, "tasks": []}
    model.index(KEY_A, 6, event("claim_won", 5, repo="acme/widgets", issue=7))  # control
    assert model.tasks_page()["total"] == 1


def test_tasks_page_newest_first_with_a_total() -> None:
    model = MonitorModel()
    for n in range(1, 6):
        model.index(KEY_A, n - 1, event("claim_won", n, repo="acme/widgets", issue=n))
    page = model.tasks_page(offset=1, limit=2)
    assert page["total"] == 5 and [t["issue"] for t in page["tasks"]] == [4, 3]


def test_the_oldest_task_is_forgotten_past_the_limit() -> None:
    model = MonitorModel(MonitorSettings(tasks_max=3))
    for n in range(1, 6):
        model.index(KEY_A, n - 1, event("claim_won", n, repo="acme/widgets", issue=n))
    assert sorted(t["issue"] for t in model.tasks_page()["tasks"]) == [3, 4, 5]


# --- discussions -----------------------------------------------------------------------------


def test_discussions_are_threaded_by_parent_and_deduplicated_by_msg_id() -> None:
    model = MonitorModel()
    plan, objection, answer, other = "1" * 32, "2" * 32, "3" * 32, "4" * 32
    model.index(KEY_A, 0, meta(plan, None, "the plan", ts=1))
    model.index(KEY_B, 0, meta(objection, plan, "an objection", node="beta", ts=3))
    model.index(KEY_A, 1, meta(answer, objection, "an answer", ts=4))
    model.index(KEY_B, 1, meta(other, plan, "a question", node="beta", ts=2))
    # beta's log also has the copy it received of alpha's plan: the same message, once.
    model.index(KEY_B, 2, meta(plan, None, "the plan", sent=False, ts=1))
    (discussion,) = model.discussions_view()
    assert discussion["task"] == "acme/widgets#7" and discussion["topic"] == "bzzz/meta/issue/acme/widgets/7"
    shown = [(m["msg_id"], m["depth"]) for m in discussion["messages"]]
    assert shown == [(plan, 0), (other, 1), (objection, 1), (answer, 2)]
    first = discussion["messages"][0]
    assert first["verified"] and (first["log_key"], first["index"]) == (KEY_A, 0)


def test_a_received_copy_is_unverified_until_the_writers_own_copy_arrives() -> None:
    model = MonitorModel()
    msg = "5" * 32
    model.index(KEY_B, 0, meta(msg, None, "heard from alpha", sent=False))
    (message,) = model.discussions_view()[0]["messages"]
    assert not message["verified"] and message["log_key"] == KEY_B
    model.take_changes()
    model.index(KEY_A, 0, meta(msg, None, "heard from alpha"))
    (message,) = model.discussions_view()[0]["messages"]
    assert message["verified"] and message["log_key"] == KEY_A
    (change,) = [c for c in model.take_changes() if c.event == "discussion"]
    assert change.data["task"] == "acme/widgets#7" and change.data["messages"][0]["verified"]


def test_replies_in_a_cycle_of_parents_are_still_shown() -> None:
    a, b = "a" * 32, "b" * 32
    messages = {
        a: {"msg_id": a, "parent_id": b, "ts": 1},
        b: {"msg_id": b, "parent_id": a, "ts": 2},
    }
    assert sorted(m["msg_id"] for m in threaded(messages)) == [a, b]


# --- caps and incremental indexing -----------------------------------------------------------


def test_every_peer_string_is_capped_before_it_is_kept() -> None:
    model = MonitorModel(MonitorSettings(text_max_bytes=64))
    html = "<img src=x onerror=alert(1)>" * 10
    model.observe_mesh(status(peer("P1", html, KEY_A, models=["é" * 100], version="v" * 300)))
    (row,) = model.agents_view()
    assert len(row["node_id"].encode()) <= 64 and row["node_id_truncated"] and row["truncated"]
    assert html.startswith(row["node_id"])  # cut, not rewritten: escaping is the page's job
    assert len(row["models"][0].encode()) <= 64 and len(row["version"]) == 64
    model.index(KEY_A, 0, meta("6" * 32, None, "<script>alert(1)</script>" * 100))
    (message,) = model.discussions_view()[0]["messages"]
    assert message["truncated"] and len(message["text"].encode()) <= 64
    assert message["text"].startswith("<script>alert(1)</script>")


def test_an_entry_is_shown_capped_with_its_true_size() -> None:
    big = json.dumps({"type": "note", "ts": 5, "text": "x" * 3_000_000}).encode()
    view = entry_view(9, big, 2048)
    assert view["index"] == 9 and view["type"] == "note" and view["ts"] == 5
    assert view["size"] == len(big) and view["truncated"] and len(view["text"].encode()) <= 2048
    small = entry_view(1, b"<b>hi</b>", 2048)
    assert small == {"index": 1, "type": "text", "ts": None, "text": "<b>hi</b>", "size": 9, "truncated": False}
    binary = entry_view(2, b"\xff\x00", 2048)
    assert binary["type"] == "binary" and binary["text"] == "ff00" and not binary["truncated"]


def test_indexing_is_incremental_an_entry_already_taken_is_not_taken_again() -> None:
    model = MonitorModel()
    model.index(KEY_A, 0, event("claim_won", 1, repo="acme/widgets", issue=1))
    model.index(KEY_A, 0, event("claim_won", 1, repo="acme/widgets", issue=1))
    assert model.indexed_total == 1 and len(model.tasks_page()["tasks"][0]["events"]) == 1


def test_changes_are_coalesced_one_per_item() -> None:
    model = MonitorModel()
    for n in range(50):
        model.index(KEY_A, n, event("task_help", n, repo="acme/widgets", issue=1, round=n))
    tasks = [c for c in model.take_changes() if c.event == "task"]
    assert len(tasks) == 1 and len(tasks[0].data["events"]) == 50


def test_gone_agents_beyond_the_limit_are_forgotten_oldest_first() -> None:
    clock = Clock()
    model = MonitorModel(MonitorSettings(agents_max=3), clock=clock)
    for n in range(5):
        clock.now += 1
        model.observe_mesh(status(peer(f"P{n}", f"node{n}", KEY_A)))  # each replaces the last: it is gone
    assert [a["node_id"] for a in model.agents_view()] == ["node2", "node3", "node4"]
    assert [a["live"] for a in model.agents_view()] == [False, False, True]
