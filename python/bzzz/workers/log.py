"""The log worker: the one owner (single writer) of this agent's signed log.

It opens `<data_dir>/log` (creating the log and its key pair on first start), records its own
starts and stops, and holds the writer's lock for as long as it runs, so nothing else can
append behind its back. Appends from the other workers reach it over the bus
(request/reply with acknowledgement, issue 3's bus); until then it logs its own life cycle.
"""

from __future__ import annotations

import os

import structlog

from bzzz.log import AgentLog
from bzzz.workers import runtime

log = structlog.get_logger("bzzz.workers.log")


def open_log(rt: runtime.WorkerRuntime) -> AgentLog:
    directory = rt.data_dir / "log"
    if (directory / "hypercore").exists():
        return AgentLog.open(directory)
    return AgentLog.create(directory)


def main(rt: runtime.WorkerRuntime) -> int:
    with open_log(rt) as agent_log:
        if agent_log.log.recovery:
            log.warning("log recovered after a crash", recovery=agent_log.log.recovery)
        agent_log.append_event("worker_started", worker=rt.name, node_id=rt.node_id, pid=os.getpid())
        log.info("log open", key=agent_log.log.key.hex(), length=agent_log.log.length)
        rt.heartbeat()  # ready
        while rt.sleep(3600):
            pass
        agent_log.append_event("worker_stopped", worker=rt.name, node_id=rt.node_id, pid=os.getpid())
    return 0


if __name__ == "__main__":
    runtime.run(main)
