"""The log worker: the one owner (single writer) of this agent's signed log.

It opens `<data_dir>/log` (creating the log and its key pair on first start), settles the
appends a crash left half-done, records its own starts and stops, and then serves the `log`
service on the bus: the other workers' appends, each applied exactly once however often it is
sent and whenever either side is killed (`bzzz.log.service`). It holds the writer's lock for
as long as it runs, so nothing else can append behind its back.
"""

from __future__ import annotations

import os
import time

import structlog

from bzzz import runtime
from bzzz.bus import Service
from bzzz.log import AgentLog
from bzzz.log.metrics import LogMetrics
from bzzz.log.service import SERVICE, LogAppender, LogWorkerSettings
from bzzz.paths import DataDir, merkle_dir
from bzzz.state import WorkerState

log = structlog.get_logger("bzzz.workers.log")


def open_log(rt: runtime.WorkerRuntime) -> AgentLog:
    directory = DataDir(rt.data_dir).log
    if merkle_dir(directory).exists():
        return AgentLog.open(directory)
    return AgentLog.create(directory)


def main(rt: runtime.WorkerRuntime) -> int:
    settings = rt.settings(LogWorkerSettings)
    with open_log(rt) as agent_log, WorkerState.for_worker(rt.data_dir, rt.name) as state:
        if agent_log.log.recovery:
            log.warning("log recovered after a crash", recovery=agent_log.log.recovery)
        metrics = LogMetrics(agent_log.log.length)
        appender = LogAppender(agent_log.log, state)
        if settled := appender.recover():
            log.info("settled appends a crash left unfinished", count=settled)
        agent_log.append_event("worker_started", worker=rt.name, node_id=rt.node_id, pid=os.getpid())
        log.info("log open", key=agent_log.log.key.hex(), length=agent_log.log.length)
        with Service(rt.run_dir, SERVICE, appender.handle, replies=appender.replies) as service:
            rt.heartbeat()  # ready: the service is bound
            next_prune = time.monotonic()
            while not rt.stopping.is_set():
                service.serve_one(rt.interval / 2)
                metrics.observe(agent_log.log.length)
                rt.heartbeat()
                if time.monotonic() >= next_prune:
                    appender.prune(settings.retention_s)
                    next_prune = time.monotonic() + settings.prune_every_s
        agent_log.append_event("worker_stopped", worker=rt.name, node_id=rt.node_id, pid=os.getpid())
        metrics.observe(agent_log.log.length)
    return 0


if __name__ == "__main__":
    runtime.run(main)
