"""The executor worker: turns a claimed issue into a pull request (`bzzz.executor`).

    [workers.executor]
    module = "bzzz.workers.executor"
    heartbeat_timeout_s = 30
    env = { GITHUB_TOKEN_FILE = "/etc/bzzz/github-token" }   # or the agent's [github_token]

    [workers.executor.settings]                  # bzzz.executor.settings.ExecutorWorkerSettings
    base_url = "https://api.github.com"
    login = "walnut-bot"
    allow = ["ruff", "make"]
    trust_authors = ["alice"]
    trust_labels = ["bzzz-approved"]

It serves the `executor` service (`bzzz.executor.service`) that the github worker hands claimed
tasks to, one at a time; a task runs in a thread while this worker's main loop goes on
heartbeating. Commands run in bubblewrap, which hides this agent's data dir, run dir and the
files of its secrets. The GitHub token comes from the agent's token source (`bzzz.secrets`):
each task clones and pushes with the token current when it starts, and its API calls ask again.
What it does goes into the agent's signed log through its journal (`bzzz.log.journal`).
"""

from __future__ import annotations

import structlog

from bzzz import runtime
from bzzz.bus import Service
from bzzz.executor.sandbox import SandboxUnavailable
from bzzz.executor.service import SERVICE, TaskService
from bzzz.executor.settings import ExecutorWorkerSettings
from bzzz.log.journal import Journal
from bzzz.secrets.source import TokenError, open_source
from bzzz.state import WorkerState

log = structlog.get_logger("bzzz.workers.executor")


def main(rt: runtime.WorkerRuntime) -> int:
    settings = rt.settings(ExecutorWorkerSettings)
    try:
        tokens = open_source()
    except TokenError as error:
        log.error("cannot start", error=str(error))
        return 2
    with WorkerState.for_worker(rt.data_dir, rt.name) as state:
        journal = Journal(state, rt.run_dir, sender=rt.name, agent=settings.login, node_id=rt.node_id)
        tasks = TaskService(
            settings,
            tokens=tokens,
            data_dir=rt.data_dir,
            run_dir=rt.run_dir,
            sender=rt.name,
            journal=journal,
            heartbeat=rt.heartbeat,
            poll_s=rt.interval / 2,
        )
        try:
            if not tasks.start(rt.sleep):
                return 0
            with Service(rt.run_dir, SERVICE, tasks.handle) as service:
                log.info(
                    "executing tasks", login=settings.login, allow=sorted(settings.allow), network=settings.network
                )
                rt.heartbeat()  # ready
                while not rt.stopping.is_set():
                    service.serve_one(rt.interval / 2)
                    rt.heartbeat()
                    # Between tasks only: while one runs, its own entries go to the log as it writes them.
                    journal.deliver()
        except SandboxUnavailable as error:
            log.error("cannot start", error=str(error))
            return 2
        finally:
            tasks.close()
            journal.close()
            tokens.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
