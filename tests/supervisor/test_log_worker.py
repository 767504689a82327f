"""The log worker under the supervisor: it owns the agent's log, and survives kill -9."""

from __future__ import annotations

import json
import os
import signal

from bzzz._core import MerkleLog
from bzzz.state import WorkerState, state_path


def log_worker() -> dict[str, object]:
    return {"module": "bzzz.workers.log", "heartbeat_timeout_s": 5.0}


def test_the_log_worker_creates_the_log_and_records_its_life_cycle(start_agent) -> None:
    agent = start_agent({"log": log_worker()})
    first = agent.wait_running("log")
    os.kill(first["pid"], signal.SIGKILL)  # no chance to record a stop
    agent.wait_running("log", other_than=first["pid"])
    agent.call("shutdown")
    assert agent.process.wait(15) == 0
    with MerkleLog.open(agent.data_dir / "log" / "hypercore") as log:
        log.verify()
        kinds = [log.get(i).decode() for i in range(log.length)]
    assert [k.split('"type":"')[1].split('"')[0] for k in kinds] == [
        "worker_started",
        "worker_started",
        "worker_stopped",
    ]


def test_only_the_log_worker_can_write_while_it_runs(start_agent) -> None:
    agent = start_agent({"log": log_worker()})
    agent.wait_running("log")
    agent.wait_for(lambda: (agent.data_dir / "log" / "secret_key").exists(), what="the log to exist")
    from bzzz.log import AgentLog

    try:
        AgentLog.open(agent.data_dir / "log")
    except OSError as err:
        assert "open for writing by another process" in str(err)
    else:
        raise AssertionError("a second writer was let in")


def delivered(agent, worker: str) -> int:
    path = state_path(agent.data_dir, worker)
    if not path.exists():
        return 0
    with WorkerState(path) as state:
        return state.counts()["delivered"]


def test_kill_9_each_worker_in_turn_while_appends_flow_loses_nothing_and_does_nothing_twice(start_agent) -> None:
    total = 2000
    producer = {
        "module": "bzzz.testing.probe",
        "args": ["--append", str(total), "--append-every", "0"],
        "heartbeat_timeout_s": 5.0,
    }
    agent = start_agent({"log": log_worker(), "producer": producer}, supervisor={"max_restarts": 50, "max_seconds": 60})
    for victim in ["log", "producer", "log", "producer", "log", "producer"]:
        before = delivered(agent, "producer")
        agent.wait_for(lambda b=before: delivered(agent, "producer") >= b + 10, 30, "appends to flow")
        assert delivered(agent, "producer") < total, "the work was done before the kill: make it longer"
        pid = agent.wait_running(victim)["pid"]
        os.kill(pid, signal.SIGKILL)
        agent.wait_running(victim, other_than=pid)
    agent.wait_for(lambda: delivered(agent, "producer") == total, 60, "every append delivered")
    agent.call("shutdown")
    assert agent.process.wait(15) == 0
    with MerkleLog.open(agent.data_dir / "log" / "hypercore") as log:
        log.verify()
        events = [json.loads(log.get(i)) for i in range(log.length)]
    appended = [e["k"] for e in events if e["type"] == "probe_append"]
    assert sorted(appended) == list(range(total))  # each exactly once
    assert [e["type"] for e in events].count("worker_started") == 4  # the first start and 3 kills
