"""From a claimed issue to a pull request: trust, workspace, commands in the sandbox, PR.

    runner = TaskRunner(settings, github, journal)
    outcome = runner.run("acme/widgets", 12, title, body)   # the issue's text as it was claimed

1. **Trust.** Only an issue whose author is in `trusted_authors`, or that carries one of
   `trusted_labels`, is executed; anyone can open an issue, and its commands would run
   here. Anything else fails without retry elsewhere: no agent of this cluster should run it.
   What runs is the title and body the runner is given, and only if they are exactly what is
   approved on GitHub now (`bzzz.github.approval`, checked at run time): an issue edited since
   it was claimed is not run from the text it was claimed with, and not from its new text
   either (another attempt takes that, and is checked the same way).
2. **What to run.** The `run` commands of the issue's `bzzz-task` block
   (`bzzz.tasks`); with none, the model executor (`bzzz.executor.model`), if the agent
   has one, proposes the change and the block's `check` commands judge it. Each program must
   be a bare name on the `allowlist`; a task with a program that is not fails here, and may be
   retried by an agent that allows it.
3. **Discussion** (issue 8), if the agent runs the hmmm worker: the plan (what will run, or
   what the model means to change and how) is posted on the issue's channel, and the work
   waits out the objection period. A plan that does not survive it is not carried out (the
   issue says why; people were asked). What peers suggested goes to the model with the task.
4. **Workspace.** A fresh clone on `bzzz/<issue>-<agent>` (`Workspace`).
5. **Run.** Each command in order, in the `Sandbox`: the workspace is all it can write; no
   token, no network unless allowed; CPU, memory and time limits. The first that fails ends
   the task, and the comment says which and why (the end of its output).
6. **Report.** Commit as the agent, push, open a pull request (or update the one an earlier
   attempt opened) whose body says what ran, closes the issue, and names the agent's log by
   key and the range of this task's entries in it.

What is journalled goes to the agent's signed log through `journal(kind, fields) -> index`
(`bzzz.log.journal.Journal`: the index if the entry is in the log already, else None).
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog
from github import Github, GithubException

from bzzz import redaction
from bzzz.executor.metrics import TaskPhase
from bzzz.executor.model import ModelExecutor, ModelResult, ModelUnavailable
from bzzz.executor.sandbox import Limits, Result, Sandbox, SandboxUnavailable
from bzzz.executor.workspace import ResultRefused, Workspace, WorkspaceError, branch_name, git_url
from bzzz.github.approval import decide, task_digest
from bzzz.github.claims import Claimer
from bzzz.tasks import IssueRef, Outcome, parse_task

log = structlog.get_logger("bzzz.executor")

OUTPUT_TAIL = 1500  # characters of a failed command's output quoted in the issue comment


@dataclass(frozen=True)
class ExecutorSettings:
    login: str
    token: str | None
    work_root: Path
    api_url: str  # where the agent's configuration says GitHub is: clones and pushes go to its git host only
    allowlist: frozenset[str]
    trusted_authors: frozenset[str] = frozenset()
    trusted_labels: frozenset[str] = frozenset()
    network: bool = False
    allow_unsandboxed: bool = False
    limits: Limits = field(default_factory=Limits)
    hidden: tuple[Path, ...] = ()
    sandbox_uid: int = 70000
    log_key: str | None = None
    email: str | None = None
    help_rounds: int = 3
    help_window_s: float = 20.0


Journal = Callable[[str, dict[str, Any]], int | None]


class DiscussionUnavailable(RuntimeError):
    """The agent must discuss before it acts, and cannot now."""


class Discussant(Protocol):
    """The hmmm worker, as the runner asks it (`bzzz.hmmm.client.HmmmClient`)."""

    def discuss(self, repo: str, number: int, title: str, body: str, plan: str) -> dict[str, Any]: ...
    def ask_help(
        self, task_id: str, problem: str, tried: list[str], needs: list[str], *, window_s: float
    ) -> list[dict[str, Any]]: ...
    def escalate(self, repo: str, number: int, reason: str, summary: str) -> str: ...
    def transcript(self, repo: str, number: int) -> dict[str, Any]: ...
    def finish(self, repo: str, number: int) -> None: ...


class TaskRunner:
    def __init__(
        self,
        settings: ExecutorSettings,
        github: Github,
        journal: Journal = lambda kind, fields: None,
        model: ModelExecutor | None = None,
        discussant: Callable[[], Discussant | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.github = github
        self.journal = journal
        self.model = model
        self.discussant = discussant  # the hmmm worker, if it runs now
        self.phase = TaskPhase()  # bzzz_tasks{state="discussing" | "executing"}

    def run(self, repo: str, number: int, title: str, body: str) -> Outcome:
        """Carry out issue `number` of `repo` as `title` and `body` say (what was claimed).

        The outcome, redacted: its summary goes into comments, the reply cache (a state file)
        and the github worker's journal, so every configured secret is taken out here, once."""
        outcome = self._outcome(repo, number, title, body)
        return Outcome(outcome.ok, redaction.redact(outcome.summary), outcome.retry_elsewhere, outcome.pull_request)

    def _outcome(self, repo: str, number: int, title: str, body: str) -> Outcome:
        try:
            return self._run(repo, number, title, body)
        except (SandboxUnavailable, DiscussionUnavailable) as err:
            return Outcome(False, f"Not executed: {err}.", retry_elsewhere=True)
        except ModelUnavailable as err:  # the endpoint went down mid-task: nothing is proposed
            return Outcome(False, f"Not done here: {err}.", retry_elsewhere=True)
        except ResultRefused as err:
            return Outcome(False, f"Not proposed: the task's result breaks a rule of this agent ({err.reason}).")
        except (WorkspaceError, GithubException) as err:
            log.warning("task failed", repo=repo, number=number, error=redaction.redact(str(err)))
            return Outcome(False, f"The task could not be carried out here: {err}", retry_elsewhere=True)

    def _run(self, repo_name: str, number: int, title: str, body: str) -> Outcome:
        settings = self.settings
        repo = self.github.get_repo(repo_name)
        issue = repo.get_issue(number)
        # What runs is what was approved: the approval is decided on the issue as GitHub has it
        # now, and must cover the digest of the exact title and body that were sent here, which
        # are all that is used from then on (a later edit cannot slip in between check and run).
        approval = decide(issue, trusted_authors=settings.trusted_authors, trusted_labels=settings.trusted_labels)
        if not approval.approved:
            return Outcome(False, f"Not executed: {approval.why}")
        if approval.digest != task_digest(title, body):
            # Edited since it was claimed: neither text is run by this attempt. The next one
            # claims what the issue says then, after the github worker's own approval check.
            return Outcome(
                False,
                "Not executed: the issue was edited after this attempt took it; "
                "what it says now is left to another attempt.",
                retry_elsewhere=True,
            )
        if redaction.contains_secret(f"{title}\n{body}"):
            # The github worker does not hand such an issue out; whoever did is refused here too.
            # The log says why; the issue is not told that the credential is live.
            log.warning(
                "not executing an issue whose text holds a secret of this agent; revoke it",
                repo=repo_name,
                number=number,
            )
            return Outcome(False, "Not executed here (the agent's log says why).")
        labels = [label.name for label in issue.labels]
        spec = parse_task(title, body, labels)
        if not spec.run and self.model is None:
            return Outcome(
                False,
                "Nothing to run: the task's `bzzz-task` block names no `run` commands, "
                "and this agent has no model executor.",
                retry_elsewhere=True,
            )
        refused = sorted(
            {argv[0] for argv in (*spec.run, *spec.check) if "/" in argv[0] or argv[0] not in settings.allowlist}
        )
        if refused:
            # Permanent: the mesh's agents share a policy, and a refused program is not a
            # passing failure to retry (each retry would be another comment).
            return Outcome(
                False,
                f"Not executed: {_listing(refused)} not on this agent's allowlist ({_listing(settings.allowlist)}).",
            )
        model: tuple[str, str] | None = None
        if not spec.run:
            assert self.model is not None
            try:
                model = self.model.pick(spec.needs_models)
            except ModelUnavailable as err:
                return Outcome(False, f"Not done here: {err}.", retry_elsewhere=True)

        first = self.journal(
            "task_started",
            {
                "repo": repo_name,
                "issue": number,
                "commands": _shown(spec.run),
                "model": model[1] if model else None,
                "digest": approval.digest,
                "approved_by": approval.by,
            },
        )
        hmmm = self.discussant()
        guidance = ""
        try:
            if hmmm is not None:
                self.phase.enter("discussing")
                plan = self._plan(title, body, spec, model)
                verdict = hmmm.discuss(repo_name, number, title, body, plan)
                self.journal(
                    "task_discussed",
                    {
                        "repo": repo_name,
                        "issue": number,
                        "proceed": verdict["proceed"],
                        "revision": verdict["revision"],
                        "reason": verdict["reason"],
                    },
                )
                if not verdict["proceed"]:
                    return Outcome(
                        False,
                        f"Not done: the plan did not survive its discussion ({verdict['reason']}). "
                        "People were asked to decide; see the escalation.",
                    )
                guidance = _guidance(verdict)
            self.phase.enter("executing")
            workspace = Workspace.clone(
                settings.work_root,
                git_url(settings.api_url, repo_name),
                token=settings.token,
                branch=branch_name(number, settings.login),
                author=(settings.login, settings.email or f"{settings.login}@users.noreply.bzzz"),
            )
            try:
                with Sandbox.open(
                    settings.work_root,
                    network=settings.network,
                    limits=settings.limits,
                    hidden=settings.hidden,
                    allow_unsandboxed=settings.allow_unsandboxed,
                    uid=settings.sandbox_uid,
                    name=f"task-{number}",
                ) as sandbox:
                    workspace.export(sandbox.files)
                    done = self._execute(repo_name, number, title, body, spec, sandbox, workspace, hmmm, guidance)
                    if isinstance(done, Outcome):
                        return done
                    what, did = done
                    # The task's files become the agent's commit only after every check: host git
                    # never reads the task's own .git, and the result may hold no link out, no
                    # special file, nothing too large, and no secret in any encoding.
                    changed = workspace.collect(sandbox.files)
                    confinement = sandbox.confinement
                    leaked = _holding_secrets(sandbox.files, changed)
                if leaked:
                    return Outcome(
                        False, f"Not proposed: {_listing(leaked[:10])} would publish a secret of this agent."
                    )
                sha = workspace.commit(
                    redaction.redact(_commit_message(title, number, spec.run, model[1] if model else None))
                )
                if sha is None:
                    return Outcome(False, "The task ran but changed nothing, so there is nothing to propose.")
                # The claim protocol's last check before effects others see: a claim given back
                # meanwhile (the agent stopped, a peer reaped it) is another attempt's now.
                if not Claimer(self.github, settings.login, settle_s=0).verify(repo_name, number):
                    log.warning("not proposing: the claim is no longer ours", repo=repo_name, number=number)
                    return Outcome(
                        False, "Not proposed: this agent no longer holds the issue's claim.", retry_elsewhere=True
                    )
                workspace.push()
                last = self.journal(
                    "task_executed",
                    {
                        "repo": repo_name,
                        "issue": number,
                        "commit": sha,
                        "branch": workspace.branch,
                        "files": changed[:50],
                    },
                )
                discussion = hmmm.transcript(repo_name, number) if hmmm is not None else None
                pull_body = _pull_body(number, what, changed, sha, settings, first, last, confinement, discussion)
                pull = self._open_or_update_pull(
                    repo, workspace, redaction.redact(f"{title} (#{number})"), redaction.redact(pull_body)
                )
                return Outcome(True, f"Opened {pull.html_url} with {did}.", pull_request=pull.html_url)
            finally:
                workspace.remove()
        finally:
            self.phase.leave()
            if hmmm is not None:
                hmmm.finish(repo_name, number)

    def _execute(
        self,
        repo_name: str,
        number: int,
        title: str,
        body: str,
        spec: Any,
        sandbox: Sandbox,
        workspace: Workspace,
        hmmm: Discussant | None,
        guidance: str,
    ) -> Outcome | tuple[str, str]:
        """Run the task in the sandbox: (what ran, what it did) for the pull request, or the
        Outcome of a failure."""
        settings = self.settings
        env = {"BZZZ_ISSUE": str(IssueRef(repo_name, number))}
        if spec.run:
            results: list[Result] = []
            for argv in spec.run:
                result = sandbox.run(argv, env=env)
                results.append(result)
                log.info("command ran", argv=list(argv), returncode=result.returncode, seconds=round(result.seconds, 2))
                if not result.ok:
                    self.journal(
                        "task_failed",
                        {
                            "repo": repo_name,
                            "issue": number,
                            "command": _shown([argv])[0],
                            "returncode": result.returncode,
                            "timed_out": result.timed_out,
                        },
                    )
                    return Outcome(False, _failure(result))
            what = "\n".join(
                f"- `{line}`: {r.seconds:.1f} s, status {r.returncode}"
                for line, r in zip(_shown(spec.run), results, strict=False)
            )
            return what, f"the result of {_listing(_shown(spec.run))}"
        assert self.model is not None

        def attempt(advice: str) -> ModelResult:
            assert self.model is not None
            return self.model.work(
                sandbox.files,
                title,
                body,
                spec.needs_models,
                spec.check,
                lambda argv: sandbox.run(argv, env=env),
                lambda: workspace.export(sandbox.files),
                guidance=guidance + advice,
            )

        worked = attempt("")
        if not worked.ok and hmmm is not None:
            worked = self._with_help(hmmm, repo_name, number, spec, worked, attempt)
            if not worked.ok:
                return Outcome(
                    False,
                    f"The task failed, and {settings.help_rounds} round(s) of help from "
                    f"peers did not fix it: {worked.summary}\n\nA person is needed here; "
                    "the discussion was escalated.",
                )
        if not worked.ok:
            self.journal(
                "task_failed", {"repo": repo_name, "issue": number, "model": worked.model, "rounds": worked.rounds}
            )
            return Outcome(False, f"The task failed: {worked.summary}", retry_elsewhere=True)
        checks = "".join(f"\n- check `{line}` passed" for line in _shown(spec.check))
        what = f"- asked `{worked.model}` (round {worked.rounds} of at most {self.model.settings.rounds}){checks}"
        return what, f"a change proposed by `{worked.model}`"

    def _plan(self, title: str, body: str, spec: Any, model: tuple[str, str] | None) -> str:
        """What this agent will change and how, for its peers to review."""
        if spec.run:
            steps = "\n".join(f"{n}. run `{line}`" for n, line in enumerate(_shown(spec.run), 1))
            return (
                f'Plan for "{title}": on a fresh clone of the default branch, in a sandbox (no network, no token):\n'
                f"{steps}\nthen commit whatever changed and open a pull request."
            )
        assert model is not None and self.model is not None
        intent = self.model.plan(title, body, model)
        checks = ", ".join(f"`{line}`" for line in _shown(spec.check)) or "none given"
        return (
            f'Plan for "{title}": {intent}\n\nHow: `{model[1]}` proposes whole-file changes; each try is checked '
            f"in a sandbox (checks: {checks}), up to {self.model.settings.rounds} tries; then a pull request."
        )

    def _with_help(
        self,
        hmmm: Discussant,
        repo: str,
        number: int,
        spec: Any,
        worked: ModelResult,
        attempt: Callable[[str], ModelResult],
    ) -> ModelResult:
        """Ask peers for help, up to `help_rounds` times; escalate if none of it works."""
        tried = [worked.summary[:2000]]
        needs = sorted(spec.needs_models | spec.needs_tools)
        for round_ in range(1, self.settings.help_rounds + 1):
            answers = hmmm.ask_help(
                str(IssueRef(repo, number)), worked.summary[:4000], tried, needs, window_s=self.settings.help_window_s
            )
            self.journal(
                "task_help",
                {
                    "repo": repo,
                    "issue": number,
                    "round": round_,
                    "answers": len(answers),
                    "from": [a["node_id"] for a in answers],
                },
            )
            if answers:
                advice = "\n\nPeers who know this kind of task advise:\n" + "\n".join(
                    f"- {a['node_id']}: {a['text']}" for a in answers
                )
                worked = attempt(advice)
                if worked.ok:
                    return worked
            tried.append(f"help round {round_}: {len(answers)} answer(s); {worked.summary[:1000]}")
        self.journal(
            "task_failed",
            {"repo": repo, "issue": number, "model": worked.model, "help_rounds": self.settings.help_rounds},
        )
        hmmm.escalate(
            repo, number, f"the task failed after {self.settings.help_rounds} help round(s)", "\n".join(tried)[:8000]
        )
        return worked

    def _open_or_update_pull(self, repo: Any, workspace: Workspace, title: str, body: str) -> Any:
        owner = repo.full_name.split("/")[0]
        for pull in repo.get_pulls(state="open", head=f"{owner}:{workspace.branch}"):
            if pull.head.ref == workspace.branch:
                pull.edit(title=title, body=body)
                return pull
        return repo.create_pull(title=title, body=body, head=workspace.branch, base=workspace.base)


def _holding_secrets(root: Path, paths: Sequence[str]) -> list[str]:
    """The changed files whose name, link target or content holds a secret of this agent in any
    encoding: a commit is public, and pushed history cannot be taken back."""
    leaking = []
    for path in paths:
        if redaction.contains_secret(path):
            leaking.append(redaction.redact(path))
            continue
        try:
            fd = os.open(root / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as err:
            if err.errno == errno.ELOOP and redaction.contains_secret(os.readlink(root / path)):
                leaking.append(path)
            continue  # otherwise removed by the task: no content of ours to publish
        with os.fdopen(fd, "rb") as file:
            if stat.S_ISREG(os.fstat(file.fileno()).st_mode) and redaction.contains_secret(file.read()):
                leaking.append(path)
    return leaking


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


def _guidance(verdict: dict[str, Any]) -> str:
    notes = "".join(f"\n- {note}" for note in verdict.get("notes") or [])
    text = f"\n\nThe plan agreed with peers (revision {verdict['revision']}):\n{verdict['plan']}"
    return text + (f"\n\nPeers also said:{notes}" if notes else "")


def _pull_body(
    number: int,
    ran: str,
    changed: Sequence[str],
    sha: str,
    settings: ExecutorSettings,
    first: int | None,
    last: int | None,
    confinement: str,
    discussion: dict[str, Any] | None = None,
) -> str:
    files = "\n".join(f"- `{path}`" for path in changed[:50]) + ("\n- ..." if len(changed) > 50 else "")
    where = f"in a sandbox ({confinement})"
    if settings.log_key and first is not None and last is not None:
        trail = (
            f"The agent's signed log (Hypercore key `{settings.log_key}`) holds this task as entries "
            f"{first} to {last}; replicate it by that key and verify them."
        )
    else:
        trail = "The agent's log was not reachable when this was written; the task is not journalled."
    if discussion is None:
        talk = "The plan was not discussed (this agent runs no hmmm worker)."
    elif discussion.get("first") is not None and settings.log_key:
        talk = (
            f"The discussion of this issue (channel `{discussion['channel']}`, {discussion['entries']} message(s)) "
            f"is in the same log as entries {discussion['first']} to {discussion['last']}."
        )
    else:
        talk = f"The discussion of this issue (channel `{discussion['channel']}`) could not be journalled."
    return (
        f"Closes #{number}.\n\nWhat `{settings.login}` did, {where}, on a fresh clone:\n\n{ran}\n\n"
        f"Files changed:\n\n{files}\n\nCommit {sha}.\n\n{trail}\n\n{talk}\n"
    )
