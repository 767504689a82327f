"""The executor worker: turns a claimed issue into a pull request (`bzzz.executor`).

    [workers.executor]
    module = "bzzz.workers.executor"
    heartbeat_timeout_s = 30
    args = ["--base-url", "https://api.github.com", "--login", "walnut-bot",
            "--allow", "ruff", "--allow", "make", "--trust-author", "alice", "--trust-label", "bzzz-approved"]
    env = { GITHUB_TOKEN_FILE = "/etc/bzzz/github-token" }

It serves the `executor` service that the github worker hands claimed tasks to
(`{"repo": ..., "number": ...}`), one at a time, and answers `{"ok", "summary",
"retry_elsewhere", "pull_request"}`. A task runs in a thread while this worker's main loop
goes on heartbeating; a retried request for the same task is answered from the reply cache.
Commands run in bubblewrap, which hides this agent's data dir, run dir and token file.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import structlog

from bzzz.bus import BusError, Request, Service, service_available
from bzzz.executor.model import ModelExecutor, ModelSettings
from bzzz.executor.runner import DiscussionUnavailable, ExecutorSettings, TaskRunner
from bzzz.executor.sandbox import SANDBOX_UID, Limits, SandboxUnavailable, check_available, clean_stale
from bzzz.executor.workspace import remove_stale
from bzzz.github.client import TokenError, connect, load_token
from bzzz.hmmm.client import SERVICE as HMMM
from bzzz.hmmm.client import HmmmClient
from bzzz.log import encode_event
from bzzz.log.service import LogAppendError, LogClient
from bzzz.log.store import log_key
from bzzz.mesh.client import SERVICE as MESH
from bzzz.mesh.client import MeshClient
from bzzz.paths import DataDir
from bzzz.tasks import Outcome
from bzzz.workers import runtime

log = structlog.get_logger("bzzz.workers.executor")

SERVICE = "executor"
STARTUP_GRACE_S = 30.0


def parse_args(name: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"bzzz.workers.executor ({name})",
        description="Run claimed tasks' commands in a sandbox and open pull requests "
                    "(token: GITHUB_TOKEN_FILE or GITHUB_TOKEN).",
    )
    parser.add_argument("--base-url", default="https://api.github.com", help="GitHub's API (or a forge's URL).")
    parser.add_argument("--login", required=True, help="This agent's GitHub login (commits and PRs are its).")
    parser.add_argument("--email", help="Commit e-mail (default <login>@users.noreply.bzzz).")
    parser.add_argument("--allow", action="append", default=[], help="A program tasks may run; repeat.")
    parser.add_argument("--trust-author", action="append", default=[], help="Execute this author's issues; repeat.")
    parser.add_argument("--trust-label", action="append", default=[], help="Execute issues with this label; repeat.")
    parser.add_argument("--network", action="store_true", help="Let task commands reach the network.")
    parser.add_argument("--allow-unsandboxed", action="store_true",
                        help="Run task commands even without bubblewrap (NO filesystem or network isolation).")
    parser.add_argument("--ollama", action="append", default=[],
                        help="An Ollama endpoint for tasks without `run` commands; repeat.")
    parser.add_argument("--model", help="The model to use when a task names none (default: the first installed).")
    parser.add_argument("--rounds", type=int, default=3, help="Tries a model gets, each told why the last failed.")
    parser.add_argument("--help-rounds", type=int, default=3,
                        help="Rounds of help from peers (hmmm worker) before a failed task goes to a person.")
    parser.add_argument("--help-window", type=float, default=20.0, help="Seconds to wait for peers' help each round.")
    parser.add_argument("--discuss", choices=("auto", "required", "off"), default="auto",
                        help="Talk each plan over with peers first (the hmmm worker): auto = when the worker runs "
                             "(waiting for it while the agent starts), required = never act without it, off = never.")
    parser.add_argument("--model-timeout", type=float, default=300.0, help="Seconds one model answer may take.")
    parser.add_argument("--work-dir", type=Path, help="Where workspaces go (default <data_dir>/workspaces).")
    parser.add_argument("--time-limit", type=float, default=900.0, help="Seconds a command may take.")
    parser.add_argument("--cpu-limit", type=int, default=600, help="CPU seconds a command may use.")
    parser.add_argument("--memory-limit-mb", type=int, default=4096,
                        help="Memory of a task's processes together (cgroup), and of each one (address space), MiB.")
    parser.add_argument("--process-limit", type=int, default=256, help="Processes a task may have at once.")
    parser.add_argument("--disk-limit-mb", type=int, default=2048,
                        help="Disk a task may fill: its workspace and its /tmp together, MiB.")
    parser.add_argument("--sandbox-uid", type=int, default=SANDBOX_UID,
                        help="The unprivileged uid (and gid) tasks run as when the agent is root.")
    args = parser.parse_args(argv)
    if not args.trust_author and not args.trust_label:
        parser.error("name at least one --trust-author or --trust-label: issues from anyone are never executed")
    if min(args.time_limit, args.cpu_limit, args.memory_limit_mb, args.model_timeout, args.process_limit,
           args.disk_limit_mb) <= 0:
        parser.error("limits must be positive")
    if not 0 < args.sandbox_uid < 2**32 - 1:
        parser.error("--sandbox-uid must be an unprivileged uid (not 0)")
    if args.rounds < 1 or args.help_rounds < 0 or args.help_window <= 0:
        parser.error("--rounds must be at least 1, --help-rounds at least 0, --help-window positive")
    return args


def main(rt: runtime.WorkerRuntime) -> int:
    args = parse_args(rt.name)
    try:
        token = load_token()
    except TokenError as error:
        log.error("cannot start", error=str(error))
        return 2
    hidden = [rt.data_dir, rt.run_dir]
    if os.environ.get("GITHUB_TOKEN_FILE"):
        hidden.append(Path(os.environ["GITHUB_TOKEN_FILE"]))
    key = log_key(DataDir(rt.data_dir).log)
    settings = ExecutorSettings(
        login=args.login, token=token, email=args.email,
        work_root=args.work_dir or DataDir(rt.data_dir).workspaces, api_url=args.base_url, sandbox_uid=args.sandbox_uid,
        allowlist=frozenset(args.allow), trusted_authors=frozenset(args.trust_author),
        trusted_labels=frozenset(args.trust_label), network=args.network,
        allow_unsandboxed=args.allow_unsandboxed, hidden=tuple(hidden), log_key=key.hex() if key else None,
        help_rounds=args.help_rounds, help_window_s=args.help_window,
        limits=Limits(wall_s=args.time_limit, cpu_s=args.cpu_limit, memory_bytes=args.memory_limit_mb << 20,
                      processes=args.process_limit, disk_bytes=args.disk_limit_mb << 20),
    )
    log_client = LogClient(rt.run_dir, sender=rt.name, timeout_s=1.0, retries=2)

    def journal(kind: str, fields: dict[str, object]) -> int | None:
        try:
            return log_client.append(encode_event(kind, agent=args.login, node_id=rt.node_id, **fields)).first_index
        except (BusError, LogAppendError) as error:
            log.warning("could not journal", kind=kind, error=str(error))
            return None

    github = connect(args.base_url, token, timeout_s=30.0, pace_s=0.0, write_pace_s=0.0)
    model = None
    if args.ollama:
        model = ModelExecutor(ModelSettings(endpoints=tuple(args.ollama), default_model=args.model,
                                            rounds=args.rounds, timeout_s=args.model_timeout))
    hmmm = HmmmClient(rt.run_dir, sender=rt.name)

    def discussant() -> HmmmClient | None:
        if args.discuss != "off" and service_available(rt.run_dir, HMMM):
            return hmmm
        if args.discuss == "required":
            raise DiscussionUnavailable("the hmmm worker is not running, and --discuss required")
        return None

    runner = TaskRunner(settings, github, journal, model, discussant=discussant)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bzzz-task")

    mesh = MeshClient(rt.run_dir, timeout_s=0.5)

    def tell_mesh(active: int) -> None:
        # The mesh advertises this agent's load to its peers; without a mesh worker, nobody asks.
        if service_available(rt.run_dir, MESH):
            try:
                mesh.set_tasks(active, 1)
            except BusError as error:
                log.info("could not tell the mesh", error=str(error))

    def handle(request: Request) -> bytes:
        task = json.loads(request.body)
        tell_mesh(1)
        future: Future[Outcome] = pool.submit(runner.run, str(task["repo"]), int(task["number"]))
        while not future.done():  # the main loop stays alive while the task runs
            rt.heartbeat()
            try:
                future.result(timeout=rt.interval / 2)
            except TimeoutError:
                continue
        outcome = future.result()
        tell_mesh(0)
        log.info("task done", repo=task["repo"], number=task["number"], ok=outcome.ok, summary=outcome.summary[:200])
        return json.dumps(outcome.as_reply()).encode()

    try:
        # Refuse to start rather than take tasks and fail each one (the sandbox says why).
        settings.work_root.mkdir(parents=True, exist_ok=True)
        check_available(settings.work_root, allow_unsandboxed=settings.allow_unsandboxed, uid=settings.sandbox_uid)
        # This executor is the work dir's only user (the data dir is the agent's): whatever is
        # there was left by one that was killed mid-task, and would hold disk forever.
        clean_stale(settings.work_root)
        remove_stale(settings.work_root)
        if args.discuss != "off":
            # The agent's workers start together, and the github worker hands out tasks once this
            # service is up: bind it only when the hmmm worker answers (or plainly is not there),
            # so that no task taken at start-up skips its discussion.
            deadline = time.monotonic() + STARTUP_GRACE_S
            while not service_available(rt.run_dir, HMMM) and time.monotonic() < deadline:
                if not rt.sleep(0.2):
                    return 0
        with Service(rt.run_dir, SERVICE, handle) as service:
            log.info("executing tasks", login=args.login, allow=sorted(settings.allowlist), network=settings.network)
            rt.heartbeat()  # ready
            while not rt.stopping.is_set():
                service.serve_one(rt.interval / 2)
                rt.heartbeat()
    except SandboxUnavailable as error:
        log.error("cannot start", error=str(error))
        return 2
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        log_client.client.close()
        mesh.close()
        hmmm.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
