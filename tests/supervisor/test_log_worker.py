"""The log worker under the supervisor: it owns the agent's log, and survives kill -9."""

from __future__ import annotations

import os
import signal

from bzzz._core import MerkleLog


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
    assert [k.split('"type":"')[1].split('"')[0] for k in kinds] == ["worker_started", "worker_started", "worker_stopped"]


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
