"""The probe worker's `--executor S`: an `executor` service whose every task succeeds after S seconds.

It stands in for the real executor (issue 7) where the github worker is tested end to end:
the task arrives over the bus as the github worker sends it, and the answer goes back the
same way (`bzzz.executor.service`).
"""

from __future__ import annotations

import time

import structlog

from bzzz import runtime
from bzzz.bus import Request, Service
from bzzz.executor.service import SERVICE, decode_task, encode_outcome
from bzzz.tasks import Outcome

log = structlog.get_logger("bzzz.testing.probe_executor")


def serve_executor(rt: runtime.WorkerRuntime, seconds: float) -> Service:
    def handle(request: Request) -> bytes:
        task = decode_task(request.body)
        log.info("probe task", repo=task.repo, number=task.number)
        time.sleep(seconds)
        return encode_outcome(Outcome(True, f"the probe executor did {task.title!r}"))

    return Service(rt.run_dir, SERVICE, handle)
