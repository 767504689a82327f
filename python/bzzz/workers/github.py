"""The github worker: takes work from GitHub issues for this agent (`bzzz.github.agent`).

Configured by its arguments in the agent's config, its token from the environment:

    [workers.github]
    module = "bzzz.workers.github"
    args = ["--base-url", "https://api.github.com", "--login", "walnut-bot", "--repo", "acme/widgets",
            "--tool", "git", "--tool", "pytest", "--model", "qwen2.5-coder"]
    env = { GITHUB_TOKEN_FILE = "/etc/bzzz/github-token" }

What it decides (claims won and lost, leases reaped, tasks finished) goes into the agent's
signed log, through the log service and this worker's outbox. Each claimed task goes to this
agent's `executor` service over the bus (issue 7), with a request id that is the claim's, so a
task handed over twice is still run once, and a later attempt (after a passing failure, by any
agent) runs again. An executor that does not answer within `--task-timeout` fails the attempt.
Failures follow the mesh's failure policy (`bzzz.github.agent`: `--max-attempts`,
`--retry-backoff`, `--comments-per-hour`). Stopped on purpose (`bzzz ctl stop`, `shutdown`),
the worker gives its claims back at once; killed, it resumes them when it starts again.

It claims with what the agent advertises: the models and tools its mesh worker detected and
broadcast (`bzzz.capabilities.advertised`), so that peers never see one list and GitHub another. Only
an agent without a mesh worker claims with `--model` / `--tool`.

Given `--trust-author` / `--trust-label` (the same as the executor's), it claims only issues
whose current text is approved (`bzzz.github.approval`), and says once on any other why it
waits; given neither, it claims what it can do and the executor alone decides.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import structlog

from bzzz.bus import BusError, Client, service_available
from bzzz.capabilities import Capabilities, advertised
from bzzz.github.agent import GithubAgent, Settings, Task
from bzzz.github.client import TokenError, connect, load_token
from bzzz.log import encode_event
from bzzz.log.service import SERVICE as LOG_SERVICE
from bzzz.log.service import append_request
from bzzz.supervisor.rundir import PID_FILE
from bzzz.state import WorkerState
from bzzz.state import outbox
from bzzz.tasks import LabelFilter, Outcome
from bzzz.workers import runtime

log = structlog.get_logger("bzzz.workers.github")

EXECUTOR = "executor"
MESH = "mesh"


def parse_args(name: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"bzzz.workers.github ({name})",
                                     description="Take work from GitHub issues (token: GITHUB_TOKEN_FILE or GITHUB_TOKEN).")
    parser.add_argument("--base-url", default="https://api.github.com", help="GitHub's API (or a forge's URL).")
    parser.add_argument("--login", required=True, help="This agent's GitHub login (it assigns itself).")
    parser.add_argument("--repo", action="append", required=True, help="owner/name; repeat for several.")
    parser.add_argument("--include-label", action="append", default=None,
                        help="Issues must carry every one of these (default: bzzz-task).")
    parser.add_argument("--exclude-label", action="append", default=[], help="Issues with any of these are skipped.")
    parser.add_argument("--model", action="append", default=[],
                        help="A model this agent runs (capabilities), when it runs no mesh worker: with one, the "
                             "agent claims with what the mesh advertises.")
    parser.add_argument("--tool", action="append", default=[],
                        help="A tool this agent has (capabilities), when it runs no mesh worker (as --model).")
    parser.add_argument("--language", action="append", default=[], help="A language this agent works in.")
    parser.add_argument("--poll-interval", type=float, default=15.0, help="Seconds between polls (304s are free).")
    parser.add_argument("--max-tasks", type=int, default=1, help="Tasks held at once.")
    parser.add_argument("--lease", type=float, default=300.0, help="Seconds a claim lives without renewal.")
    parser.add_argument("--settle", type=float, default=1.0, help="Seconds between assigning and reading back.")
    parser.add_argument("--task-timeout", type=float, default=3600.0, help="Seconds the executor may take.")
    parser.add_argument("--pace", type=float, default=0.25, help="Seconds between GitHub requests (0 for a forge).")
    parser.add_argument("--trust-author", action="append", default=[],
                        help="Claim this author's issues; repeat. With --trust-label: the executor's trust, checked "
                             "before claiming (given neither, the executor alone decides).")
    parser.add_argument("--trust-label", action="append", default=[],
                        help="Claim issues with this label once whoever added it approved their exact text "
                             "(`bzzz approve <digest>`); repeat.")
    parser.add_argument("--max-attempts", type=int, default=3,
                        help="Attempts the whole mesh makes at an issue that fails for a passing reason.")
    parser.add_argument("--retry-backoff", type=float, default=60.0,
                        help="Seconds after a failed attempt before the next (doubling each time).")
    parser.add_argument("--comments-per-hour", type=int, default=6,
                        help="Comments the whole mesh may put on one issue in an hour (at least 2).")
    args = parser.parse_args(argv)
    if args.max_tasks < 1 or args.poll_interval <= 0 or args.lease <= 0:
        parser.error("--max-tasks must be >= 1, --poll-interval and --lease > 0")
    if args.max_attempts < 1 or args.retry_backoff < 0 or args.comments_per_hour < 2:
        parser.error("--max-attempts must be >= 1, --retry-backoff >= 0, --comments-per-hour >= 2")
    return args


def executor_runner(rt: runtime.WorkerRuntime, timeout_s: float) -> tuple[Client, Callable[[Task], Outcome]]:
    client = Client(rt.run_dir, sender=rt.name, timeout_s=min(timeout_s, 30.0),
                    retries=max(0, int(timeout_s // 30.0)))

    def run(task: Task) -> Outcome:
        body = json.dumps({"repo": task.repo, "number": task.number, "title": task.title, "body": task.body}).encode()
        try:
            # One id per attempt: a task handed over twice is run once, and a later attempt runs again.
            reply = client.request(EXECUTOR, body, request_id=f"task:{task.repo}#{task.number}:{task.attempt_id}")
        except BusError as error:
            return Outcome(False, f"the executor did not take the task ({error})", retry_elsewhere=True)
        answer = json.loads(reply)
        return Outcome(bool(answer.get("ok")), str(answer.get("summary", "")), bool(answer.get("retry_elsewhere")))

    return client, run


def main(rt: runtime.WorkerRuntime) -> int:
    args = parse_args(rt.name)
    try:
        token = load_token()
    except TokenError as error:
        log.error("cannot start", error=str(error))
        return 2
    settings = Settings(
        login=args.login, repos=args.repo,
        capabilities=Capabilities(models=args.model, tools=args.tool, languages=args.language),
        filters=LabelFilter(include=frozenset(args.include_label or ["bzzz-task"]),
                            exclude=frozenset(args.exclude_label)),
        poll_interval_s=args.poll_interval, max_tasks=args.max_tasks, lease_s=args.lease, settle_s=args.settle,
        node_id=rt.node_id,
        trusted_authors=frozenset(args.trust_author), trusted_labels=frozenset(args.trust_label),
        max_attempts=args.max_attempts, retry_backoff_s=args.retry_backoff, comments_per_hour=args.comments_per_hour,
    )
    # Short timeouts: a step must end well inside the worker's heartbeat timeout.
    github = connect(args.base_url, token, timeout_s=5.0, pace_s=args.pace, write_pace_s=args.pace * 4)
    client, run = executor_runner(rt, args.task_timeout)
    flags = settings.capabilities
    told: list[bool] = []

    try:  # the agent's start: a file an earlier run's mesh worker wrote says nothing of this one
        started = (rt.run_dir / PID_FILE).stat().st_mtime
    except OSError:
        started = time.time()

    def capabilities() -> Capabilities | None:
        # One source: what the mesh worker advertises, when the agent runs one (module docs);
        # until it has, nothing is claimed (None).
        seen = advertised.read(rt.run_dir, since=started)
        if seen is None:
            return None if MESH in rt.workers else flags
        if (args.model or args.tool) and not told:
            told.append(True)
            log.warning("--model and --tool are not used: this agent claims with what its mesh worker advertises")
        return Capabilities(models=seen[0], tools=seen[1], languages=args.language)

    log_client = Client(rt.run_dir, sender=rt.name, timeout_s=0.5, retries=0)
    with WorkerState.for_worker(rt.data_dir, rt.name) as state:
        def journal(kind: str, fields: dict[str, Any]) -> None:
            # Into the outbox first: the entry reaches the signed log once, whenever the log worker answers.
            entry = encode_event(kind, agent=args.login, node_id=rt.node_id, **fields)
            state.put(LOG_SERVICE, append_request([entry]), key=f"{kind}:{os.urandom(8).hex()}")

        agent = GithubAgent(settings, github, state, run, can_work=lambda: service_available(rt.run_dir, EXECUTOR),
                            journal=journal, capabilities=capabilities)
        log.info("taking work from GitHub", login=args.login, repos=args.repo, pid=os.getpid())
        rt.heartbeat()  # ready
        try:
            while rt.sleep(0.2):
                agent.step()
                outbox.deliver(state, log_client, topic=LOG_SERVICE, limit=20)
        finally:
            # Stopped on purpose (a crash never gets here): give the claims back now rather than
            # leave them to their leases. A task still running at the executor finds, before
            # it pushes, that the claim is no longer this agent's, and proposes nothing.
            agent.release_all("the agent stopped")
            agent.close(wait=False)
            client.close()
            log_client.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
