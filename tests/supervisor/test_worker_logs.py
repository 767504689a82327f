"""A worker's log file is JSON lines: each with its time, level and worker, and inside a bus
request the request's id and sender, so an operator can follow one request across workers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bzzz.executor.service import ExecutorClient
from bzzz.paths import DataDir


@dataclass
class Claimed:
    repo: str = "alice/tasks"
    number: int = 7
    title: str = "a task"
    body: str = ""
    attempt_id: str = "attempt-1"


def test_worker_lines_are_json_with_the_worker_and_the_request_they_serve(start_agent: Any) -> None:
    agent = start_agent({"executor": {"module": "bzzz.testing.probe", "args": ["--executor", "0"]}})
    agent.wait_running("executor")
    with ExecutorClient(agent.run_dir, sender="github", timeout_s=30) as client:
        outcome = client.run(Claimed())
    assert outcome.ok, outcome.summary  # positive control: the request was served
    path = DataDir(agent.data_dir).worker_output("executor")
    agent.wait_for(lambda: "probe task" in path.read_text(), what="the line of the served request")
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    served = [line for line in lines if line["event"] == "probe task"]
    assert served == [
        {
            "event": "probe task",
            "repo": "alice/tasks",
            "number": 7,
            "worker": "executor",
            "request_id": "task:alice/tasks#7:attempt-1",
            "sender": "github",
            "level": "info",
            "timestamp": served[0]["timestamp"],
        }
    ]
    assert served[0]["timestamp"].endswith("Z")
    assert all(line.get("worker") == "executor" and "level" in line for line in lines)
