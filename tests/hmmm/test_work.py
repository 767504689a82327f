"""The discussion in the task's life: the claimant's executor asks its peers before it acts, works
to the plan they agreed, asks for help when stuck, and gives up to a person after three rounds.
A forge, a working agent (github, executor, hmmm, mesh, log) and two peers that only discuss."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz.hmmm.messages import issue_channel
from bzzz.mesh.client import MeshClient
from tests.agents import Agent, free_port, wait_until
from tests.executor.fake_ollama import FakeOllama, fake_ollama
from tests.forge.harness import start_forge, stop_forge
from tests.hmmm.cluster import entries, messages, start_cluster, workers
from tests.issues import SEED, open_issue, wait_for_comment

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

MODEL = ["gemma3:270m"]
TASK = """Add a greeting file that says hello.

```bzzz-task
check: ["grep -q hello GREETING.md"]
```
"""
GOODBYE = "<<<FILE GREETING.md>>>\ngoodbye\n<<<END>>>\n"
HELLO = "<<<FILE GREETING.md>>>\nhello\n<<<END>>>\n"


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


def working_agent(
    start_agent: Any,
    forge: Any,
    tmp_path: Path,
    worker: FakeOllama,
    critic: FakeOllama,
    helper: FakeOllama,
    **executor: Any,
) -> tuple[Agent, Agent, Agent]:
    token = tmp_path / "token"
    token.write_text("agent-1-secret-token\n")
    env = {"GITHUB_TOKEN_FILE": str(token)}
    critic_agent, helper_agent = start_cluster(
        start_agent, ["critic", "helper"], ollama={"critic": critic.url, "helper": helper.url}
    )
    first = MeshClient(critic_agent.run_dir).status()["listen"][0]
    crew = workers(port=free_port(), bootstrap=[first], ollama=worker.url, hmmm_settings={"window_s": 8})
    crew["github"] = {
        "module": "bzzz.workers.github",
        "heartbeat_timeout_s": 30.0,
        "env": env,
        "settings": {
            "base_url": forge.url,
            "login": "agent-1",
            "repos": ["alice/tasks"],
            "poll_interval_s": 0.3,
            "settle_s": 0.05,
            "pace_s": 0,
            "task_timeout_s": 300,
        },
    }
    crew["executor"] = {
        "module": "bzzz.workers.executor",
        "heartbeat_timeout_s": 30.0,
        "env": env,
        "settings": {
            "base_url": forge.url,
            "login": "agent-1",
            "allow": ["grep"],
            "trust_authors": ["alice"],
            "time_limit_s": 30,
            "ollama_endpoints": [worker.url],
            **executor,
        },
    }
    agent = start_agent(crew, name="agent-1", node_id="agent-1")
    for name in ("hmmm", "github", "executor"):
        agent.wait_running(name, timeout=30)
    wait_until(lambda: len(MeshClient(critic_agent.run_dir).peers()) == 2, 30, "the critic hears agent-1")
    return agent, critic_agent, helper_agent


def test_an_objection_revises_the_plan_the_model_then_works_to_and_the_pull_request_links_the_discussion(
    start_agent,
    forge: Any,
    tmp_path: Path,
) -> None:
    revised = "Add GREETING.md saying hello, exactly as the issue asks."
    with (
        fake_ollama(
            MODEL,
            [HELLO],
            rules={"TASK: plan": ["I will add GREETING.md saying goodbye."], "TASK: rule": [f"REVISE: {revised}"]},
        ) as worker,
        fake_ollama(
            MODEL, ["ACK"], rules={"TASK: review": ["OBJECTION: the issue asks for hello, not goodbye.", "ACK"]}
        ) as critic,
        fake_ollama(MODEL, ["CANNOT"]) as helper,
    ):
        agent, critic_agent, _ = working_agent(start_agent, forge, tmp_path, worker, critic, helper)
        number = open_issue(forge, "Add a greeting", TASK)
        wait_for_comment(forge, number, "Opened ", timeout=120)
        work = [r for r in worker.requests if "messages" in r and r["messages"][0]["role"] == "system"]

    # The model worked to the revised plan, not the first one.
    assert len(work) == 1
    prompt = work[0]["messages"][1]["content"]
    assert "The plan agreed with peers (revision 2)" in prompt and revised in prompt
    channel = issue_channel("alice/tasks", number)
    plans = messages(agent, "sent", topic=channel, query_type="plan")
    assert [p["parameters"]["revision"] for p in plans] == [1, 2] and "goodbye" in plans[0]["text"]
    assert [m["query_type"] for m in messages(critic_agent, "sent", topic=channel)] == ["objection", "ack"]

    # The pull request names the discussion's entries in the agent's log.
    pull = forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json()[0]
    assert f"channel `{channel}`" in pull["body"]
    log = entries(agent)
    discussed = [i for i, e in enumerate(log) if e["type"] == "hmmm_message" and e.get("topic") == channel]
    assert f"entries {discussed[0]} to {discussed[-1]}" in pull["body"]
    assert any(e["type"] == "task_discussed" and e["revision"] == 2 and e["proceed"] for e in log)


def test_after_three_rounds_of_help_that_do_not_work_the_task_fails_to_a_person(
    start_agent,
    forge: Any,
    tmp_path: Path,
) -> None:
    advice = "The check greps for hello; write hello."
    with (
        fake_ollama(MODEL, [GOODBYE], rules={"TASK: plan": ["Add GREETING.md."]}) as worker,  # never listens
        fake_ollama(MODEL, ["ACK"], rules={"TASK: help": ["CANNOT"]}) as critic,
        fake_ollama(MODEL, ["ACK"], rules={"TASK: help": [f"HELP: {advice}"]}) as helper,
    ):
        agent, critic_agent, helper_agent = working_agent(
            start_agent, forge, tmp_path, worker, critic, helper, rounds=1, help_window_s=8
        )
        number = open_issue(forge, "Add a greeting", TASK)
        bodies = wait_for_comment(forge, number, "Could not finish", timeout=180)
        work = [r for r in worker.requests if "messages" in r and r["messages"][0]["role"] == "system"]

    [failed] = [b for b in bodies if "Could not finish" in b]
    assert "3 round(s) of help" in failed and "A person is needed" in failed
    # One try of its own, then one per help round, each told what the helper advised.
    assert len(work) == 4 and all(advice in w["messages"][1]["content"] for w in work[1:])
    requests = messages(agent, "sent", message_type="task_help_request")
    assert len(requests) == 3
    answered = messages(agent, "received", message_type="task_help_response")
    assert [a["from_node"] for a in answered] == ["helper"] * 3  # the critic could not help, and said nothing
    [escalation] = messages(agent, "sent", message_type="escalation")
    assert escalation["payload"]["reason"] == "the task failed after 3 help round(s)"
    assert [m["msg_id"] for m in messages(helper_agent, "received", message_type="escalation")] == [
        escalation["msg_id"]
    ]
    assert forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json() == []
