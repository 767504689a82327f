"""The github worker: takes work from GitHub issues for this agent (`bzzz.github.agent`).

    [workers.github]
    module = "bzzz.workers.github"
    env = { GITHUB_TOKEN_FILE = "/etc/bzzz/github-token" }   # or the agent's [github_token]

    [workers.github.settings]                    # bzzz.github.settings.GithubWorkerSettings
    base_url = "https://api.github.com"
    login = "walnut-bot"
    repos = ["acme/widgets"]
    trust_authors = ["alice"]

What it decides (claims won and lost, leases reaped, tasks finished) goes into the agent's
signed log through its journal (`bzzz.log.journal`). Each claimed task goes to this agent's
executor over the bus (`bzzz.executor.service`), once per attempt; one that does not answer
within `task_timeout_s` fails the attempt. Failures follow the mesh's failure policy
(`bzzz.github.agent`). It claims with what the agent's mesh worker advertises
(`bzzz.github.capabilities`). Stopped on purpose (`bzzz ctl stop`, `shutdown`), the worker
gives its claims back at once; killed, it resumes them when it starts again. Its GitHub token
comes from the agent's token source (`bzzz.secrets`), asked at every request: while the
source has none (Vault silent past `max_stale_s`), the worker takes no work and waits.
"""

from __future__ import annotations

import os

import structlog

from bzzz import runtime
from bzzz.executor.service import ExecutorClient
from bzzz.github.agent import GithubAgent, Settings
from bzzz.github.capabilities import ClaimCapabilities
from bzzz.github.client import connect
from bzzz.github.settings import GithubWorkerSettings
from bzzz.log.journal import Journal
from bzzz.secrets.source import TokenError, open_source
from bzzz.state import WorkerState

log = structlog.get_logger("bzzz.workers.github")


def main(rt: runtime.WorkerRuntime) -> int:
    settings = rt.settings(GithubWorkerSettings)
    try:
        tokens = open_source()
    except TokenError as error:
        log.error("cannot start", error=str(error))
        return 2
    agent_settings = Settings.of(settings, rt.node_id)
    # Short timeouts: a step must end well inside the worker's heartbeat timeout.
    github = connect(settings.base_url, tokens, timeout_s=5.0, pace_s=settings.pace_s, write_pace_s=settings.pace_s * 4)
    capabilities = ClaimCapabilities(rt.run_dir, own=agent_settings.capabilities, mesh_runs="mesh" in rt.workers)
    with (
        WorkerState.for_worker(rt.data_dir, rt.name) as state,
        ExecutorClient(rt.run_dir, sender=rt.name, timeout_s=settings.task_timeout_s) as executor,
    ):
        journal = Journal(state, rt.run_dir, sender=rt.name, agent=settings.login, node_id=rt.node_id)
        agent = GithubAgent(
            agent_settings,
            github,
            state,
            executor.run,
            can_work=executor.available,
            journal=journal,
            capabilities=capabilities,
        )
        log.info("taking work from GitHub", login=settings.login, repos=settings.repos, pid=os.getpid())
        rt.heartbeat()  # ready
        try:
            while rt.sleep(0.2):
                if tokens.current() is None:
                    continue  # no token now (the source logged why, once): no work until there is one
                agent.step()
                journal.deliver(limit=20)
        finally:
            # Stopped on purpose (a crash never gets here): give the claims back now rather than
            # leave them to their leases. A task still running at the executor finds, before
            # it pushes, that the claim is no longer this agent's, and proposes nothing.
            agent.release_all("the agent stopped")
            agent.close(wait=False)
            journal.close()
            tokens.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
