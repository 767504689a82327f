"""The mesh worker: this agent's libp2p host, bridged to the agent's bus (`bzzz.mesh.service`).

    [workers.mesh]
    module = "bzzz.workers.mesh"

    [workers.mesh.settings]
    listen = ["/ip4/0.0.0.0/tcp/4001"]
    capabilities_interval_s = 10
    metrics_port = 9464                  # this worker only: prefer the agent's [metrics] listen
    discovery = { bootstrap = ["/ip4/10.0.0.5/tcp/4001/p2p/12D3KooW..."] }
    capabilities = { ollama_endpoints = ["http://127.0.0.1:11434"], max_tasks = 2 }

Every setting, its default and why: `bzzz.mesh.settings.MeshSettings` (`bzzz config show`
lists them).
"""

from __future__ import annotations

import trio

from bzzz import runtime
from bzzz.mesh.service import run
from bzzz.mesh.settings import MeshSettings


def main(rt: runtime.WorkerRuntime) -> int:
    trio.run(run, rt, rt.settings(MeshSettings))
    return 0


if __name__ == "__main__":
    runtime.run(main)
