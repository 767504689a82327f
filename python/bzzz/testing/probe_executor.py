"""The probe worker's `--executor S`: an `executor` service whose every task succeeds after S seconds.

It stands in for the real executor (issue 7) where the github worker is tested end to end:
the task arrives over the bus as the github worker sends it, and the answer goes back the
same way.
"""

from __future__ import annotations

import json
import time

from bzzz.bus import Request, Service
from bzzz.workers import runtime


def serve_executor(rt: runtime.WorkerRuntime, seconds: float) -> Service:
    def handle(request: Request) -> bytes:
        task = json.loads(request.body)
        time.sleep(seconds)
        return json.dumps({"ok": True, "summary": f"the probe executor did {task['title']!r}"}).encode()

    return Service(rt.run_dir, "executor", handle)
