"""The hmmm worker: this agent's part in discussions before work (`bzzz.hmmm.service`).

    [workers.hmmm]
    module = "bzzz.workers.hmmm"

    [workers.hmmm.settings]
    window_s = 30
    ollama_endpoints = ["http://127.0.0.1:11434"]
    n8n_webhook = "https://n8n.example/webhook/bzzz-escalation"
    slack_webhook_file = "/etc/bzzz/slack-webhook"

It needs the agent's `mesh` worker (gossip) and `log` worker (the transcript). It serves the
`hmmm` service (`bzzz.hmmm.client`) that the executor asks before it acts, and on its own it
follows its peers' discussions, reviews their plans with its model, answers and relays help
requests, and forwards escalations to the webhooks it is given. Every HMMM message it sends or
receives is journalled to the agent's signed log (`bzzz.log.journal`). Every setting:
`bzzz.hmmm.settings.HmmmWorkerSettings` (`bzzz config show` lists them).
"""

from __future__ import annotations

from bzzz import runtime
from bzzz.hmmm.service import HmmmService
from bzzz.hmmm.settings import HmmmWorkerSettings
from bzzz.log.journal import Journal
from bzzz.state import WorkerState


def main(rt: runtime.WorkerRuntime) -> int:
    settings = rt.settings(HmmmWorkerSettings)
    with WorkerState.for_worker(rt.data_dir, rt.name) as state:
        journal = Journal(state, rt.run_dir, sender=rt.name, agent=rt.node_id or rt.name, node_id=rt.node_id)
        try:
            HmmmService(rt, settings, state, journal).serve()
        finally:
            journal.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
