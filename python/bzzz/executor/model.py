"""The Ollama executor: a local model proposes the change, the sandbox checks it.

    executor = ModelExecutor(ModelSettings(endpoints=("http://127.0.0.1:11434",), default_model="qwen2.5-coder"))
    result = executor.work(workspace, title, body, needs_models, checks, run_check)

1. **Model.** Every endpoint's models are listed (`bzzz.capabilities.list_models`); the task's
   `needs.models` pick one (`bzzz.capabilities.choose_model`: a name without a tag matches any
   tag of it), else the configured default if installed, else the first listed. No endpoint
   answering, or no model fitting: the task is not done here (another agent may have the model).
2. **Prompt.** The issue's title and body, the repository's file list, and the contents of
   the files the issue mentions (up to `max_context_bytes`), with the answer format of
   `bzzz.executor.edits`. Only regular files inside the workspace are read, never through a
   symlink: repository content is untrusted, and a link to a host file must not carry that
   file into the prompt.
3. **Rounds.** The answer's edits are checked and applied; then the task's `check` commands
   run in the sandbox. An answer that cannot be applied, changes nothing, or fails a check
   goes back to the model with the reason (the end of the check's output), up to `rounds`
   times; each round starts again from the clean clone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import ollama
import structlog

from bzzz.capabilities import choose_model, list_models
from bzzz.executor.edits import EditError, apply_edits, check_path, is_git_name, parse_edits
from bzzz.executor.sandbox import Result

log = structlog.get_logger("bzzz.executor")

SYSTEM = """You are a careful software engineer working in a git repository.
Answer ONLY with the files you change, each given whole, in this exact format:

<<<FILE relative/path/to/file>>>
the complete new content of the file
<<<END>>>

To delete a file, write a line <<<DELETE relative/path>>>. Do not write anything else."""

FEEDBACK_TAIL = 2000


class ModelUnavailable(RuntimeError):
    """No endpoint answered, none has a model the task can use, or the endpoint stopped
    answering mid-task (it went down; a model that fails to load can crash `ollama serve`)."""


# What the client raises when the endpoint itself fails (refused, reset, timed out, an error
# status such as "the model runner stopped"), as against an answer the task cannot use.
ENDPOINT_ERRORS = (ollama.ResponseError, ConnectionError, httpx.HTTPError)


@dataclass(frozen=True)
class ModelSettings:
    endpoints: tuple[str, ...]
    default_model: str | None = None
    rounds: int = 3
    timeout_s: float = 300.0
    max_context_bytes: int = 48_000
    options: dict[str, Any] = field(default_factory=lambda: {"temperature": 0.2})


@dataclass(frozen=True)
class ModelResult:
    ok: bool
    model: str
    rounds: int
    summary: str
    changed: tuple[str, ...] = ()


class ModelExecutor:
    def __init__(self, settings: ModelSettings, client: Callable[..., Any] = ollama.Client) -> None:
        self.settings = settings
        self._client = client

    def installed(self) -> list[tuple[str, list[str]]]:
        """(endpoint, its models) for every endpoint that answers."""
        found = []
        for url in self.settings.endpoints:
            try:
                models = list_models(url, timeout_s=10.0, client=self._client)
            except Exception as err:  # an endpoint that is down is simply not used
                log.info("ollama endpoint not answering", url=url, error=str(err)[:200])
                continue
            found.append((url, list(models)))
        return found

    def pick(self, needs: frozenset[str]) -> tuple[str, str]:
        """(endpoint, model) for a task needing `needs`; ModelUnavailable if there is none."""
        endpoints = self.installed()
        if not endpoints:
            raise ModelUnavailable(
                f"no Ollama endpoint answers ({', '.join(self.settings.endpoints) or 'none configured'})"
            )
        for url, models in endpoints:
            model = choose_model(needs, models, self.settings.default_model)
            if model is not None:
                return url, model
        have = sorted({m for _, models in endpoints for m in models})
        wanted = ", ".join(sorted(needs)) or self.settings.default_model or "any"
        raise ModelUnavailable(f"no installed model fits (wanted {wanted}; installed: {', '.join(have) or 'none'})")

    def plan(self, title: str, body: str, chosen: tuple[str, str]) -> str:
        """The model's intent, in its words, for peers to review; a plain statement if it says nothing."""
        url, model = chosen
        try:
            reply = self._client(host=url, timeout=self.settings.timeout_s).chat(
                model=model,
                messages=[{"role": "user", "content": plan_prompt(title, body)}],
                options=self.settings.options,
            )
            intent = (reply.message.content or "").strip()[:PLAN_MAX]
        except Exception as err:  # no plan from the model is no reason not to discuss
            log.info("model gave no plan", model=model, error=str(err)[:200])
            intent = ""
        return intent or f"change the repository as the issue asks, with `{model}`."

    def work(
        self,
        workspace: Path,
        title: str,
        body: str,
        needs: frozenset[str],
        checks: Sequence[Sequence[str]],
        run_check: Callable[[Sequence[str]], Result],
        reset: Callable[[], None],
        *,
        guidance: str = "",
    ) -> ModelResult:
        """`guidance`: what the discussion agreed and peers advised, added to the task."""
        url, model = self.pick(needs)
        client = self._client(host=url, timeout=self.settings.timeout_s)
        prompt = _prompt(workspace, title, body, self.settings) + guidance
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
        problem = ""
        for round_ in range(1, self.settings.rounds + 1):
            try:
                reply = client.chat(model=model, messages=messages, options=self.settings.options)
            except ENDPOINT_ERRORS as err:
                log.warning("ollama endpoint failed mid-task", url=url, model=model, round=round_, error=str(err)[:300])
                raise ModelUnavailable(f"the Ollama at {url} failed while {model} worked: {_reason(err)}") from err
            answer = reply.message.content or ""
            messages.append({"role": "assistant", "content": answer})
            reset()
            try:
                changed = apply_edits(workspace, parse_edits(answer))
            except EditError as err:
                problem = f"your answer could not be applied: {err}"
            else:
                failed = next((r for r in map(run_check, checks) if not r.ok), None)
                if failed is None:
                    log.info("model change passed", model=model, round=round_, changed=changed)
                    return ModelResult(
                        True,
                        model,
                        round_,
                        f"{model} proposed a change to {len(changed)} file(s); "
                        f"{len(checks)} check(s) passed (round {round_}).",
                        tuple(changed),
                    )
                output = (failed.stdout + failed.stderr)[-FEEDBACK_TAIL:]
                problem = f"the check {failed.describe()}. Its output ends with:\n{output}"
            log.info("model round failed", model=model, round=round_, problem=problem[:300])
            messages.append(
                {
                    "role": "user",
                    "content": f"That did not work: {problem}\n"
                    "Answer again with the complete files, in the same format.",
                }
            )
        reset()
        return ModelResult(
            False,
            model,
            self.settings.rounds,
            f"{model} found no working change in {self.settings.rounds} round(s); last: {problem[:500]}",
        )


PLAN_MAX = 2000


def _reason(err: Exception) -> str:
    """One line: the client's own words, or the exception's name when it has none."""
    text = " ".join(str(err).split())[:300]
    return text or type(err).__name__


def plan_prompt(title: str, body: str) -> str:
    return (
        f"TASK: plan\n\nThe task (a GitHub issue): {title}\n\n{body.strip()[:6000]}\n\n"
        "In a few sentences, say which files you will change and how. Do not write the code yet."
    )


def _prompt(workspace: Path, title: str, body: str, settings: ModelSettings) -> str:
    files = _repository_files(workspace)
    parts = [
        f"The task (a GitHub issue): {title}\n\n{body.strip()}\n",
        "Files in the repository:\n" + "\n".join(files[:500]),
    ]
    budget = settings.max_context_bytes
    for path in files:
        if path not in body and Path(path).name not in body:
            continue
        data = _read_inside(workspace, path, budget)
        if data is None:
            continue
        budget -= len(data)
        parts.append(f"<<<FILE {path}>>>\n{data.decode(errors='replace')}<<<END>>>")
    return "\n\n".join(parts)


MAX_LISTED_FILES = 5000


def _repository_files(workspace: Path) -> list[str]:
    """The regular files of the repository, relative, sorted; never through a symlink (a repo
    may hold `notes -> /root`: walking or reading through it would put the host's files in
    the prompt, and so in a model's answer and a pull request), never inside `.git`."""
    found: list[str] = []
    for directory, dirs, names in os.walk(workspace, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not is_git_name(d))  # os.walk lists links to dirs here, never enters them
        for name in names:
            path = Path(directory, name)
            if stat.S_ISREG(path.lstat().st_mode):
                found.append(str(path.relative_to(workspace)))
        if len(found) >= MAX_LISTED_FILES:
            break
    return sorted(found)


def _read_inside(workspace: Path, path: str, budget: int) -> bytes | None:
    """The file's bytes if it is a regular file inside the workspace reached without a
    symlink and at most `budget` bytes long; None otherwise."""
    try:
        check_path(workspace, path)
        fd = os.open(workspace / path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except (EditError, OSError):
        return None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > budget:
            return None
        data = file.read(budget + 1)
    return data if len(data) <= budget else None
