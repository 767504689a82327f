"""From a claimed issue to a pull request: trust, workspace, commands in the sandbox, PR.

    runner = TaskRunner(settings, github, journal)
    outcome = runner.run(repo="acme/widgets", number=12)

1. **Trust.** Only an issue whose author is in `trusted_authors`, or that carries one of
   `trusted_labels`, is executed; anyone can open an issue, and its commands would run
   here. Anything else fails without retry elsewhere: no agent of this cluster should run it.
2. **What to run.** The `run` commands of the issue's `bzzz-task` block
   (`bzzz.github.tasks`); with none, the model executor (`bzzz.executor.model`), if the agent
   has one, proposes the change and the block's `check` commands judge it. Each program must
   be a bare name on the `allowlist`; a task with a program that is not fails here, and may be
   retried by an agent that allows it.
3. **Workspace.** A fresh clone on `bzzz/<issue>-<agent>` (`Workspace`).
4. **Run.** Each command in order, in the `Sandbox`: the workspace is all it can write; no
   token, no network unless allowed; CPU, memory and time limits. The first that fails ends
   the task, and the comment says which and why (the end of its output).
5. **Report.** Commit as the agent, push, open a pull request (or update the one an earlier
   attempt opened) whose body says what ran, closes the issue, and names the agent's log by
   key and the range of this task's entries in it.

What is journalled goes to the agent's signed log through `journal(kind, fields) -> index`.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from github import Github, GithubException

from bzzz.executor.model import ModelExecutor, ModelUnavailable
from bzzz.executor.sandbox import Limits, Result, Sandbox, SandboxUnavailable
from bzzz.executor.workspace import Workspace, WorkspaceError, branch_name
from bzzz.github.tasks import parse_task

log = structlog.get_logger("bzzz.executor")

OUTPUT_TAIL = 1500  # characters of a failed command's output quoted in the issue comment


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str
    retry_elsewhere: bool = False
    pull_request: str | None = None

    def as_reply(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary, "retry_elsewhere": self.retry_elsewhere,
                "pull_request": self.pull_request}


@dataclass(frozen=True)
class ExecutorSettings:
    login: str
    token: str | None
    work_root: Path
    allowlist: frozenset[str]
    trusted_authors: frozenset[str] = frozenset()
    trusted_labels: frozenset[str] = frozenset()
    network: bool = False
    allow_unsandboxed: bool = False
    limits: Limits = field(default_factory=Limits)
    hidden: tuple[Path, ...] = ()
    log_key: str | None = None
    email: str | None = None


Journal = Callable[[str, dict[str, Any]], int | None]


class TaskRunner:
    def __init__(self, settings: ExecutorSettings, github: Github, journal: Journal = lambda kind, fields: None,
                 model: ModelExecutor | None = None) -> None:
        self.settings = settings
        self.github = github
        self.journal = journal
        self.model = model

    def run(self, repo: str, number: int) -> Outcome:
        try:
            return self._run(repo, number)
        except SandboxUnavailable as err:
            return Outcome(False, f"Not executed: {err}.", retry_elsewhere=True)
        except (WorkspaceError, GithubException) as err:
            log.warning("task failed", repo=repo, number=number, error=str(err))
            return Outcome(False, f"The task could not be carried out here: {err}", retry_elsewhere=True)

    def _run(self, repo_name: str, number: int) -> Outcome:
        settings = self.settings
        repo = self.github.get_repo(repo_name)
        issue = repo.get_issue(number)
        author = issue.user.login
        labels = [label.name for label in issue.labels]
        if author not in settings.trusted_authors and not set(labels) & settings.trusted_labels:
            why = (f"Not executed: @{author} is not a trusted author here, and the issue carries none of the "
                   f"labels trusted for execution ({_listing(settings.trusted_labels)}).")
            return Outcome(False, why)
        spec = parse_task(issue.title, issue.body, labels)
        if not spec.run and self.model is None:
            return Outcome(False, "Nothing to run: the task's `bzzz-task` block names no `run` commands, "
                                  "and this agent has no model executor.", retry_elsewhere=True)
        refused = sorted({argv[0] for argv in (*spec.run, *spec.check)
                          if "/" in argv[0] or argv[0] not in settings.allowlist})
        if refused:
            return Outcome(False, f"Not executed: {_listing(refused)} not on this agent's allowlist "
                                  f"({_listing(settings.allowlist)}).", retry_elsewhere=True)
        model: tuple[str, str] | None = None
        if not spec.run:
            assert self.model is not None
            try:
                model = self.model.pick(spec.needs_models)
            except ModelUnavailable as err:
                return Outcome(False, f"Not done here: {err}.", retry_elsewhere=True)

        first = self.journal("task_started", {"repo": repo_name, "issue": number, "commands": _shown(spec.run),
                                              "model": model[1] if model else None})
        workspace = Workspace.clone(
            settings.work_root, repo.clone_url, token=settings.token, branch=branch_name(number, settings.login),
            author=(settings.login, settings.email or f"{settings.login}@users.noreply.bzzz"),
        )
        try:
            sandbox = Sandbox(workspace.path, network=settings.network, limits=settings.limits,
                              hidden=settings.hidden, allow_unsandboxed=settings.allow_unsandboxed)
            env = {"BZZZ_ISSUE": f"{repo_name}#{number}"}
            if spec.run:
                results: list[Result] = []
                for argv in spec.run:
                    result = sandbox.run(argv, env=env)
                    results.append(result)
                    log.info("command ran", argv=list(argv), returncode=result.returncode,
                             seconds=round(result.seconds, 2))
                    if not result.ok:
                        self.journal("task_failed", {"repo": repo_name, "issue": number,
                                                     "command": _shown([argv])[0], "returncode": result.returncode,
                                                     "timed_out": result.timed_out})
                        return Outcome(False, _failure(result))
                what = "\n".join(f"- `{line}`: {r.seconds:.1f} s, status {r.returncode}"
                                  for line, r in zip(_shown(spec.run), results))
                did = f"the result of {_listing(_shown(spec.run))}"
            else:
                assert self.model is not None
                worked = self.model.work(workspace.path, issue.title, issue.body or "", spec.needs_models, spec.check,
                                         lambda argv: sandbox.run(argv, env=env), workspace.reset)
                if not worked.ok:
                    self.journal("task_failed", {"repo": repo_name, "issue": number, "model": worked.model,
                                                 "rounds": worked.rounds})
                    return Outcome(False, f"The task failed: {worked.summary}", retry_elsewhere=True)
                checks = "".join(f"\n- check `{line}` passed" for line in _shown(spec.check))
                what = f"- asked `{worked.model}` (round {worked.rounds} of at most {self.model.settings.rounds}){checks}"
                did = f"a change proposed by `{worked.model}`"
            changed = workspace.changed_files()
            sha = workspace.commit(_commit_message(issue.title, number, spec.run, model[1] if model else None))
            if sha is None:
                return Outcome(False, "The task ran but changed nothing, so there is nothing to propose.")
            workspace.push()
            last = self.journal("task_executed", {"repo": repo_name, "issue": number, "commit": sha,
                                                  "branch": workspace.branch, "files": changed[:50]})
            body = _pull_body(number, what, changed, sha, settings, first, last, sandbox.isolated)
            pull = self._open_or_update_pull(repo, workspace, f"{issue.title} (#{number})", body)
            return Outcome(True, f"Opened {pull.html_url} with {did}.", pull_request=pull.html_url)
        finally:
            workspace.remove()

    def _open_or_update_pull(self, repo: Any, workspace: Workspace, title: str, body: str) -> Any:
        owner = repo.full_name.split("/")[0]
        for pull in repo.get_pulls(state="open", head=f"{owner}:{workspace.branch}"):
            if pull.head.ref == workspace.branch:
                pull.edit(title=title, body=body)
                return pull
        return repo.create_pull(title=title, body=body, head=workspace.branch, base=workspace.base)


def _shown(commands: Sequence[Sequence[str]]) -> list[str]:
    return [shlex.join(argv) for argv in commands]


def _listing(names: Any) -> str:
    items = sorted(f"`{n}`" for n in names)
    return ", ".join(items) if items else "none"


def _failure(result: Result) -> str:
    output = (result.stderr.strip() or result.stdout.strip())[-OUTPUT_TAIL:]
    quoted = f"\n\n```\n{output}\n```" if output else ""
    return f"The task failed: {result.describe()}.{quoted}"


def _commit_message(title: str, number: int, commands: Sequence[Sequence[str]], model: str | None) -> str:
    if model is not None:
        return f"{title} (#{number})\n\nProposed by {model}; checked in a sandbox.\n"
    ran = "\n".join(f"    {line}" for line in _shown(commands))
    return f"{title} (#{number})\n\nRan, in a sandbox:\n\n{ran}\n"


def _pull_body(number: int, ran: str, changed: Sequence[str], sha: str, settings: ExecutorSettings,
               first: int | None, last: int | None, isolated: bool) -> str:
    files = "\n".join(f"- `{path}`" for path in changed[:50]) + ("\n- ..." if len(changed) > 50 else "")
    where = "in a bubblewrap sandbox" if isolated else "WITHOUT a sandbox (bubblewrap is missing; the operator allowed it)"
    if settings.log_key and first is not None and last is not None:
        trail = (f"The agent's signed log (Hypercore key `{settings.log_key}`) holds this task as entries "
                 f"{first} to {last}; replicate it by that key and verify them.")
    else:
        trail = "The agent's log was not reachable when this was written; the task is not journalled."
    return (f"Closes #{number}.\n\nWhat `{settings.login}` did, {where}, on a fresh clone:\n\n{ran}\n\n"
            f"Files changed:\n\n{files}\n\nCommit {sha}.\n\n{trail}\n")
