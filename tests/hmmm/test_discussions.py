"""Agents talk a plan over before they act: three or more real agents (supervisor; log, mesh and
hmmm workers) on 127.0.0.1, each with its own scripted model, or none."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from bzzz.bus import ServiceError
from bzzz.hmmm.messages import issue_channel, meta_payload
from bzzz.mesh.client import MeshClient
from tests.executor.fake_ollama import fake_ollama
from tests.hmmm.cluster import entries, eventually, hmmm, messages, pause, start_cluster

REPO = "acme/widgets"
TITLE = "The parser rejects empty lists"
BODY = "Parsing `[]` raises. It should return an empty list."
PLAN = "Change parser.py so that `[]` parses to an empty list; replace tests/test_parser.py with a new test."
MODEL = ["gemma3:270m"]
# An objection period that waits for a peer's review must outlast a review round trip (gossip, a
# model call, gossip) even on a loaded two-core CI machine; one that waits for nobody can be short.
REPLY_WINDOW_S = 8


def test_a_plan_without_objections_proceeds_after_the_window_and_is_in_every_log(start_agent) -> None:
    with fake_ollama(MODEL, ["ACK"]) as reviewer:
        a, b, c = start_cluster(start_agent, ["a", "b", "c"], ollama={"b": reviewer.url})
        verdict = hmmm(a).discuss(REPO, 1, TITLE, BODY, PLAN, window_s=REPLY_WINDOW_S)

    assert verdict["proceed"] is True and verdict["revision"] == 1 and verdict["plan"] == PLAN
    assert verdict["acks"] == ["b"] and verdict["escalated"] == []
    channel = issue_channel(REPO, 1)
    [plan] = messages(a, "sent", topic=channel, query_type="plan")
    # Everyone following heard the plan; the reviewer's ack reached the claimant.
    for agent in (b, c):
        assert [m["msg_id"] for m in messages(agent, "received", topic=channel, query_type="plan")] == [plan["msg_id"]]
    [ack] = messages(b, "sent", topic=channel, query_type="ack")
    assert ack["parent_id"] == plan["msg_id"]
    assert [m["msg_id"] for m in messages(a, "received", topic=channel)] == [ack["msg_id"]]
    # The transcript is a range of the claimant's log that holds exactly that discussion.
    transcript = hmmm(a).transcript(REPO, 1)
    assert transcript["entries"] == 2
    logged = entries(a)[transcript["first"] : transcript["last"] + 1]
    assert {e["msg_id"] for e in logged if e["type"] == "hmmm_message"} == {plan["msg_id"], ack["msg_id"]}


def test_a_valid_objection_changes_the_plan_and_the_revision_goes_ahead(start_agent) -> None:
    revised = "Change parser.py so that `[]` parses to an empty list; keep tests/test_parser.py and add a case to it."
    with (
        fake_ollama(MODEL, ["ANSWER: -"], rules={"TASK: rule": [f"REVISE: {revised}"]}) as claimant,
        fake_ollama(
            MODEL,
            ["ACK"],
            rules={
                "TASK: review": [
                    "OBJECTION: the plan deletes tests/test_parser.py, which covers other cases; keep it.",
                    "ACK",
                ]
            },
        ) as critic,
    ):
        a, b, c = start_cluster(start_agent, ["a", "b", "c"], ollama={"a": claimant.url, "b": critic.url})
        verdict = hmmm(a).discuss(REPO, 2, TITLE, BODY, PLAN, window_s=REPLY_WINDOW_S)

    assert verdict["proceed"] is True and verdict["revision"] == 2 and verdict["plan"] == revised
    channel = issue_channel(REPO, 2)
    first, second = messages(a, "sent", topic=channel, query_type="plan")
    [objection] = messages(b, "sent", topic=channel, query_type="objection")
    assert objection["parent_id"] == first["msg_id"] and second["parent_id"] == objection["msg_id"]
    assert second["text"] == revised and second["parameters"]["revision"] == 2
    # The critic reviewed the revision too, and agreed; the third agent saw the whole exchange.
    [ack] = messages(b, "sent", topic=channel, query_type="ack")
    assert ack["parent_id"] == second["msg_id"] and verdict["acks"] == ["b"]
    assert {m["query_type"] for m in messages(c, "received", topic=channel)} == {"plan", "objection", "ack"}


def test_an_objection_that_stands_stops_the_task_and_asks_a_human(start_agent) -> None:
    # The claimant's model cannot rule on it (noise): the objection must not be waved through.
    with (
        fake_ollama(MODEL, ["the the the"]) as claimant,
        fake_ollama(MODEL, ["OBJECTION: this must be discussed with the maintainers first."]) as critic,
    ):
        a, b, c = start_cluster(start_agent, ["a", "b", "c"], ollama={"a": claimant.url, "b": critic.url})
        verdict = hmmm(a).discuss(REPO, 5, TITLE, BODY, PLAN, window_s=REPLY_WINDOW_S)
    assert verdict["proceed"] is False and "objection" in verdict["reason"]
    [escalation] = verdict["escalated"]
    assert [m["msg_id"] for m in messages(c, "received", topic="bzzz/meta/escalation")] == [escalation]


class Webhooks:
    """A local HTTP server standing in for N8N and Slack: records every POST."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
        return [(headers, body) for p, headers, body in self.calls if p == path]


@pytest.fixture
def webhooks() -> Iterator[Webhooks]:
    server = Webhooks()
    yield server
    server.server.shutdown()


def test_a_question_for_a_human_is_escalated_and_each_webhook_gets_it_exactly_once(
    start_agent,
    webhooks: Webhooks,
) -> None:
    question = "Must the parser stay compatible with 1.x inputs?"
    with (
        fake_ollama(
            MODEL, ["-"], rules={"TASK: answer": ["HUMAN: only the maintainers know the compatibility policy."]}
        ) as claimant,
        fake_ollama(MODEL, [f"QUESTION: {question}"]) as asker,
    ):
        a, b, c = start_cluster(
            start_agent,
            ["a", "b", "c"],
            ollama={"a": claimant.url, "b": asker.url},
            hmmm_settings={"c": {"n8n_webhook": f"{webhooks.url}/n8n", "slack_webhook": f"{webhooks.url}/slack"}},
        )
        verdict = hmmm(a).discuss(REPO, 3, TITLE, BODY, PLAN, window_s=REPLY_WINDOW_S)

    # A question does not block: the claimant goes ahead, and a person is asked.
    assert verdict["proceed"] is True and len(verdict["escalated"]) == 1
    [escalation_id] = verdict["escalated"]
    assert any(question in note for note in verdict["notes"])
    [answer] = messages(a, "sent", topic=issue_channel(REPO, 3), query_type="answer")
    assert escalation_id in answer["text"]

    [(headers, n8n)] = eventually(lambda: webhooks.to("/n8n"), "the N8N webhook called")
    assert headers["X-Bzzz-Msg-Id"] == escalation_id
    assert n8n["msg_id"] == escalation_id and n8n["issue_id"] == f"{REPO}#3" and n8n["node_id"] == "a"
    assert n8n["reason"] == "a question needs a human" and question in n8n["summary"]
    assert n8n["repo"] == REPO and n8n["number"] == 3 and n8n["forwarded_by"] == "c"
    [(_, slack)] = eventually(lambda: webhooks.to("/slack"), "the Slack webhook called")
    assert f"{REPO}#3" in slack["text"] and question in json.dumps(slack["blocks"])

    # Exactly once: not again later, nor after the forwarding worker is killed and restarted.
    pause(3)
    old = c.worker("hmmm")["pid"]
    os.kill(old, signal.SIGKILL)
    c.wait_running("hmmm", other_than=old, timeout=30)
    pause(3)
    assert len(webhooks.to("/n8n")) == 1 and len(webhooks.to("/slack")) == 1


def test_a_help_request_is_answered_by_the_peer_that_has_what_it_needs(start_agent) -> None:
    advice = "Run `make clean` first: the build cache holds objects from the old compiler."
    with (
        fake_ollama(MODEL, ["HELP: try turning it off and on again"]) as unable,
        fake_ollama(MODEL, [f"HELP: {advice}"]) as able,
    ):
        a, b, c = start_cluster(
            start_agent, ["a", "b", "c"], ollama={"b": unable.url, "c": able.url}, tools={"c": ("git", "sh", "make")}
        )
        answers = hmmm(a).ask_help(
            f"{REPO}#4", "`make test` fails with undefined symbols", ["ran it twice"], ["make"], window_s=10
        )
        assert not any("TASK: help" in str(r) for r in unable.requests)  # b lacks `make`: not even asked

    assert [(x["node_id"], x["text"]) for x in answers] == [("c", advice)]
    channel = issue_channel(REPO, 4)  # help about an issue is part of its transcript
    [request] = messages(a, "sent", message_type="task_help_request")
    assert request["payload"]["needs"] == ["make"] and hmmm(a).transcript(REPO, 4)["entries"] == 2
    assert [m["payload"]["request_id"] for m in messages(b, "received", message_type="task_help_request")] == [
        request["payload"]["request_id"]
    ]
    assert messages(b, "sent") == []
    assert messages(a, "received", message_type="task_help_response")[0]["payload"]["text"] == advice
    assert channel not in MeshClient(b.run_dir).status()["topics"]  # help is not a discussion anyone joins


def test_a_discussion_past_its_ttl_ends_and_nothing_more_is_admitted(start_agent) -> None:
    # A runaway: the critic objects to every revision, the claimant revises every time.
    with (
        fake_ollama(MODEL, ["-"], rules={"TASK: rule": ["REVISE: yet another plan"]}) as claimant,
        fake_ollama(MODEL, ["OBJECTION: no."]) as critic,
    ):
        a, b, c = start_cluster(
            start_agent,
            ["a", "b", "c"],
            ollama={"a": claimant.url, "b": critic.url},
            gossip={"safeguards": {"discussion_ttl_s": 10}},
            hmmm_settings={"a": {"max_revisions": 1000}},
        )
        # The period outlasts the TTL, so only the TTL can end this discussion, however slow a round is.
        verdict = hmmm(a).discuss(REPO, 6, TITLE, BODY, PLAN, window_s=60)

    assert verdict["proceed"] is False and "TTL" in verdict["reason"]
    channel = issue_channel(REPO, 6)
    plans = messages(a, "sent", topic=channel, query_type="plan")
    assert 2 <= len(plans) < 100  # it went round and round, and then it ended
    # The channel is closed in every gate: a late post is refused, here by the sender's own. The gates
    # count the TTL from the first plan's timestamp, a moment after the claimant started its clock.
    pause(1)
    late = meta_payload(f"{REPO}#6", "objection", "one more thing", parent_id=plans[-1]["msg_id"])
    with pytest.raises(ServiceError, match="closed"):
        MeshClient(b.run_dir).publish("meta_msg", channel, late)
