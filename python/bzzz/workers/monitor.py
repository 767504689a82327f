"""The monitor worker: the Mesh Visualizer's page and its live model of the mesh (`bzzz.monitor`).

    [workers.monitor]
    module = "bzzz.workers.monitor"

    [workers.monitor.settings]
    http = "127.0.0.1:8700"
    text_max_bytes = 2048

It needs the agent's `mesh` worker: it reads the live peer table from it and asks it to follow
every advertised log, then reads those verified replicas. `bzzz monitor` runs it beside a mesh
worker that takes no work. Every setting: `bzzz.monitor.settings.MonitorSettings`.
"""

from __future__ import annotations

from bzzz import runtime
from bzzz.monitor.service import serve
from bzzz.monitor.settings import MonitorSettings


def main(rt: runtime.WorkerRuntime) -> int:
    serve(rt, rt.settings(MonitorSettings))
    return 0


if __name__ == "__main__":
    runtime.run(main)
