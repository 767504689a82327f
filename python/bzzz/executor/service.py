"""Handing a claimed task to the agent's executor: the executor worker's `executor` service on the bus.

    ExecutorClient.run(task) ──Request(TaskRequest)──> svc-executor.sock ──> TaskService.handle
                             <──Reply(Outcome)────────                       (TaskRunner, in a thread)

The github worker claims an issue and sends the task as it claimed it: the issue, its title
and body, and the attempt (`TaskRequest`). The executor runs exactly that text, and only if
GitHub says now that it is approved (`bzzz.executor.runner`), and answers how it went
(`bzzz.tasks.Outcome`). One request id per attempt (`task:<repo>#<n>:<attempt id>`): a task handed over
twice (the client resends while the executor works) is run once and answered from the reply
cache, and a later attempt, by this agent or after a peer's, runs again. An executor that does
not answer within the github worker's `task_timeout_s` fails the attempt, for another to retry.

The executor runs one task at a time, in a thread, while its worker's main loop goes on
heartbeating; it tells the mesh its load (`bzzz.mesh.client`), which peers schedule on.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import msgspec
import structlog

from bzzz.bus import BusError, Client, Request, service_available
from bzzz.executor.metrics import task_done
from bzzz.executor.model import ModelExecutor, ModelSettings
from bzzz.executor.runner import DiscussionUnavailable, ExecutorSettings, TaskRunner
from bzzz.executor.sandbox import Limits, check_available, clean_stale
from bzzz.executor.settings import ExecutorWorkerSettings
from bzzz.executor.workspace import remove_stale
from bzzz.github.client import connect
from bzzz.hmmm.client import SERVICE as HMMM
from bzzz.hmmm.client import HmmmClient
from bzzz.log.journal import Journal
from bzzz.log.store import log_key
from bzzz.mesh.client import SERVICE as MESH
from bzzz.mesh.client import MeshClient
from bzzz.paths import DataDir
from bzzz.secrets.source import TokenSource, configured
from bzzz.tasks import Outcome

log = structlog.get_logger("bzzz.executor.service")

SERVICE = "executor"
STARTUP_GRACE_S = 30.0  # how long the executor waits, at the agent's start, for the hmmm worker to answer
RESEND_AFTER_S = 30.0  # the client resends a task it has no answer for (the executor may have restarted)


class TaskRequest(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A claimed task, as it was claimed: the issue, its text then, and which attempt this is."""

    repo: str
    number: int
    title: str
    body: str
    attempt_id: str


class ClaimedTask(Protocol):
    """What the github worker hands over (`bzzz.github.agent.Task`)."""

    @property
    def repo(self) -> str: ...
    @property
    def number(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def attempt_id(self) -> str: ...


_encode = msgspec.msgpack.Encoder().encode
_decode_request = msgspec.msgpack.Decoder(TaskRequest).decode
_decode_outcome = msgspec.msgpack.Decoder(Outcome).decode


def decode_task(body: bytes) -> TaskRequest:
    """The task in a request to `SERVICE` (a ValueError if it is not one)."""
    try:
        return _decode_request(body)
    except msgspec.DecodeError as error:
        raise ValueError(f"not a task: {error}") from None


def encode_outcome(outcome: Outcome) -> bytes:
    """The body of the executor's reply."""
    return _encode(outcome)


def runner_settings(
    settings: ExecutorWorkerSettings,
    *,
    token: str | None,
    work_root: Path,
    hidden: tuple[Path, ...],
    log_key: str | None,
) -> ExecutorSettings:
    """What the task runner needs: the worker's settings, with what only the running worker knows."""
    return ExecutorSettings(
        login=settings.login,
        token=token,
        email=settings.email,
        work_root=settings.work_dir or work_root,
        api_url=settings.base_url,
        sandbox_uid=settings.sandbox_uid,
        allowlist=frozenset(settings.allow),
        trusted_authors=frozenset(settings.trust_authors),
        trusted_labels=frozenset(settings.trust_labels),
        network=settings.network,
        allow_unsandboxed=settings.allow_unsandboxed,
        hidden=hidden,
        log_key=log_key,
        help_rounds=settings.help_rounds,
        help_window_s=settings.help_window_s,
        limits=Limits(
            wall_s=settings.time_limit_s,
            cpu_s=settings.cpu_limit_s,
            memory_bytes=settings.memory_limit_mb << 20,
            processes=settings.process_limit,
            disk_bytes=settings.disk_limit_mb << 20,
        ),
    )


class Discussion:
    """Whether a plan is talked over with peers first (`discuss`: auto, required or off): the
    runner's `discussant`, the hmmm worker's client when it answers."""

    def __init__(self, run_dir: Path, mode: str, *, sender: str) -> None:
        self.run_dir, self.mode = run_dir, mode
        self.hmmm = HmmmClient(run_dir, sender=sender)

    def __call__(self) -> HmmmClient | None:
        if self.mode != "off" and service_available(self.run_dir, HMMM):
            return self.hmmm
        if self.mode == "required":
            raise DiscussionUnavailable("the hmmm worker is not running, and discuss = required")
        return None

    def wait_at_start(self, sleep: Callable[[float], bool]) -> bool:
        """Wait (a while) for the hmmm worker to answer; False if asked to stop meanwhile.

        The agent's workers start together, and the github worker hands out tasks once the
        executor's service is up: it is bound only when the hmmm worker answers (or plainly
        is not there), so that no task taken at start-up skips its discussion."""
        if self.mode == "off":
            return True
        deadline = time.monotonic() + STARTUP_GRACE_S
        while not service_available(self.run_dir, HMMM) and time.monotonic() < deadline:
            if not sleep(0.2):
                return False
        return True

    def close(self) -> None:
        self.hmmm.close()


class TaskService:
    """The executor worker's side of `SERVICE`: runs each task it is sent, one at a time.

    `handle` runs the task in a thread and calls `heartbeat` while it waits, so the worker's
    main loop stays alive however long the task takes. `start` does the checks that make an
    executor that cannot run tasks refuse to start, rather than take tasks and fail each one.
    """

    def __init__(
        self,
        settings: ExecutorWorkerSettings,
        *,
        tokens: TokenSource,
        data_dir: Path,
        run_dir: Path,
        sender: str,
        journal: Journal,
        heartbeat: Callable[[], None],
        poll_s: float,
    ) -> None:
        self.run_dir, self.heartbeat, self.poll_s, self.tokens = run_dir, heartbeat, poll_s, tokens
        # Hidden from every task: the agent's state, keys and sockets, and the files of secrets.
        hidden = [data_dir, run_dir, *configured().secret_files()]
        if os.environ.get("GITHUB_TOKEN_FILE"):
            hidden.append(Path(os.environ["GITHUB_TOKEN_FILE"]))
        key = log_key(DataDir(data_dir).log)
        self.settings = runner_settings(
            settings,
            token=None,  # each task gets the token current when it starts (`handle`)
            work_root=DataDir(data_dir).workspaces,
            hidden=tuple(hidden),
            log_key=key.hex() if key else None,
        )
        github = connect(settings.base_url, tokens, timeout_s=30.0, pace_s=0.0, write_pace_s=0.0)
        model = None
        if settings.ollama_endpoints:
            model = ModelExecutor(
                ModelSettings(
                    endpoints=tuple(settings.ollama_endpoints),
                    default_model=settings.model,
                    rounds=settings.rounds,
                    timeout_s=settings.model_timeout_s,
                )
            )
        self.discussion = Discussion(run_dir, settings.discuss, sender=sender)
        self.runner = TaskRunner(self.settings, github, journal, model, discussant=self.discussion)
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bzzz-task")
        self.mesh = MeshClient(run_dir, timeout_s=0.5)

    def start(self, sleep: Callable[[float], bool]) -> bool:
        """Make ready to take tasks; False if asked to stop meanwhile. Raises
        `SandboxUnavailable` (saying why) if tasks cannot be run here."""
        work_root = self.settings.work_root
        work_root.mkdir(parents=True, exist_ok=True)
        check_available(work_root, allow_unsandboxed=self.settings.allow_unsandboxed, uid=self.settings.sandbox_uid)
        # This executor is the work dir's only user (the data dir is the agent's): whatever is
        # there was left by one that was killed mid-task, and would hold disk forever.
        clean_stale(work_root)
        remove_stale(work_root)
        return self.discussion.wait_at_start(sleep)

    def tell_mesh(self, active: int) -> None:
        # The mesh advertises this agent's load to its peers; without a mesh worker, nobody asks.
        if service_available(self.run_dir, MESH):
            try:
                self.mesh.set_tasks(active, 1)
            except BusError as error:
                log.info("could not tell the mesh", error=str(error))

    def handle(self, request: Request) -> bytes:
        """The bus handler: run the task (a `TaskRequest`), reply with its `Outcome`."""
        task = decode_task(request.body)
        with structlog.contextvars.bound_contextvars(task=f"{task.repo}#{task.number}"):
            token = self.tokens.current()  # for this task's clone and push; its API calls ask again
            if token is None:
                return encode_outcome(Outcome(False, "No GitHub token at the moment.", retry_elsewhere=True))
            self.runner.settings = replace(self.settings, token=token)
            self.tell_mesh(1)
            started = time.monotonic()
            try:
                # The task's thread logs with this request's context (its id, the task).
                future = self.pool.submit(
                    contextvars.copy_context().run, self.runner.run, task.repo, task.number, task.title, task.body
                )
                while not future.done():  # the main loop stays alive while the task runs
                    self.heartbeat()
                    try:
                        future.result(timeout=self.poll_s)
                    except TimeoutError:
                        continue
                outcome = future.result()
            finally:
                self.tell_mesh(0)
            task_done(time.monotonic() - started, outcome.ok)
            log.info("task done", attempt=task.attempt_id, ok=outcome.ok, summary=outcome.summary[:200])
            return encode_outcome(outcome)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.mesh.close()
        self.discussion.close()


class ExecutorClient:
    """What the github worker uses to have a claimed task carried out by its agent's executor."""

    def __init__(self, run_dir: Path | str, *, sender: str = "", timeout_s: float = 3600.0) -> None:
        self.run_dir = Path(run_dir)
        # Resent (same request id) until `timeout_s` is up: an executor restarted meanwhile gets it again.
        self.client = Client(
            run_dir,
            sender=sender,
            timeout_s=min(timeout_s, RESEND_AFTER_S),
            retries=max(0, int(timeout_s // RESEND_AFTER_S)),
        )

    def available(self) -> bool:
        """Whether the executor's service is up (the github worker claims nothing it cannot start)."""
        return service_available(self.run_dir, SERVICE)

    def run(self, task: ClaimedTask) -> Outcome:
        """Carry out `task` (its text as claimed); a failure to be retried elsewhere if the executor does not answer."""
        request = TaskRequest(task.repo, task.number, task.title, task.body, task.attempt_id)
        try:
            # One id per attempt: a task handed over twice is run once, and a later attempt runs again.
            reply = self.client.request(
                SERVICE, _encode(request), request_id=f"task:{task.repo}#{task.number}:{task.attempt_id}"
            )
        except BusError as error:
            return Outcome(False, f"the executor did not take the task ({error})", retry_elsewhere=True)
        return _decode_outcome(reply)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> ExecutorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "SERVICE",
    "Discussion",
    "ExecutorClient",
    "TaskRequest",
    "ClaimedTask",
    "TaskService",
    "decode_task",
    "encode_outcome",
    "runner_settings",
]
