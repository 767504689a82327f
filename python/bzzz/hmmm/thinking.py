"""What an agent's model thinks of a discussion: reviews, objections, questions, help.

Each question to the model names its task on the first line (`TASK: review`, ...) and asks for
an answer that starts with one of a few keywords. The keyword decides; an answer that starts with
none of them is *not understood*, and the caller does the safe thing (no review is posted, an
objection is not waved through, a question goes to a human, no help is offered). Small and base
models answer instructions with noise; noise must never read as agreement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import ollama
import structlog

from bzzz.capabilities import choose_model, list_models

log = structlog.get_logger("bzzz.hmmm")

TEXT_MAX = 4000  # characters of a model's answer carried into a message (the core allows 8 KiB)


@dataclass(frozen=True)
class Issue:
    repo: str
    number: int
    title: str
    body: str


@dataclass(frozen=True)
class Reply:
    """A reviewer's answer to a plan."""

    query_type: Literal["ack", "objection", "question", "suggestion", "correction"]
    text: str


@dataclass(frozen=True)
class Ruling:
    """The claimant's decision on an objection: revise the plan (`text` is the new plan), or keep it
    (`text` says why)."""

    revise: bool
    text: str


@dataclass(frozen=True)
class Answer:
    """The claimant's answer to a question; `human` if only a person can answer it."""

    human: bool
    text: str


class Thinker(Protocol):
    def review(self, issue: Issue, plan: str) -> Reply | None: ...
    def rule(self, issue: Issue, plan: str, objection: str) -> Ruling | None: ...
    def answer(self, issue: Issue, plan: str, question: str) -> Answer | None: ...
    def advise(self, problem: str, tried: list[str]) -> str | None: ...


def _keyword(answer: str, keywords: tuple[str, ...]) -> tuple[str, str] | None:
    """(KEYWORD, the rest) if the answer's first non-blank line starts with one of `keywords`."""
    text = answer.strip()
    match = re.match(r"^\**\s*([A-Z]+)\s*\**\s*:?\s*", text)
    if match is None or match.group(1) not in keywords:
        return None
    return match.group(1), text[match.end() :].strip()[:TEXT_MAX]


def _issue_text(issue: Issue) -> str:
    return f"Issue {issue.repo}#{issue.number}: {issue.title}\n\n{issue.body.strip()[:4000]}"


class ModelThinker:
    """A Thinker backed by an Ollama endpoint (the `ollama` client)."""

    def __init__(
        self, endpoint: str, model: str, *, timeout_s: float = 120.0, client: Callable[..., Any] = ollama.Client
    ) -> None:
        self.model = model
        self._client = client(host=endpoint, timeout=timeout_s)

    def _ask(self, task: str, prompt: str) -> str:
        try:
            reply = self._client.chat(
                model=self.model,
                messages=[{"role": "user", "content": f"TASK: {task}\n\n{prompt}"}],
                options={"temperature": 0.2},
            )
        except Exception as err:  # a model that is down thinks nothing; the caller does the safe thing
            log.warning("model did not answer", task=task, error=str(err)[:200])
            return ""
        return reply.message.content or ""

    def _decide(self, task: str, prompt: str, keywords: tuple[str, ...], *, needs_text: bool) -> tuple[str, str] | None:
        """(KEYWORD, the rest) of the model's answer; None if it is not understood."""
        answer = self._ask(task, prompt)
        found = _keyword(answer, keywords)
        if found is None or (needs_text and not found[1]):
            log.info("model answer not understood", task=task, answer=answer[:200])
            return None
        return found

    def review(self, issue: Issue, plan: str) -> Reply | None:
        found = self._decide(
            "review",
            f"{_issue_text(issue)}\n\nAnother agent plans to do this:\n\n{plan}\n\n"
            "Review the plan. Answer with ACK if it is sound; OBJECTION: <why> if it must not go "
            "ahead as written; QUESTION: <what> if something is unclear; SUGGESTION: <text> or "
            "CORRECTION: <text> for smaller points.",
            ("ACK", "OBJECTION", "QUESTION", "SUGGESTION", "CORRECTION"),
            needs_text=False,
        )
        return None if found is None else Reply(found[0].lower(), found[1])  # type: ignore[arg-type]

    def rule(self, issue: Issue, plan: str, objection: str) -> Ruling | None:
        found = self._decide(
            "rule",
            f"{_issue_text(issue)}\n\nYour plan:\n\n{plan}\n\nA peer objects:\n\n"
            f"{objection}\n\nIf the objection is right, answer REVISE: followed by the complete new "
            "plan. If it is wrong, answer KEEP: followed by why the plan stands.",
            ("REVISE", "KEEP"),
            needs_text=True,
        )
        return None if found is None else Ruling(found[0] == "REVISE", found[1])

    def answer(self, issue: Issue, plan: str, question: str) -> Answer | None:
        found = self._decide(
            "answer",
            f"{_issue_text(issue)}\n\nYour plan:\n\n{plan}\n\nA peer asks:\n\n"
            f"{question}\n\nAnswer with ANSWER: <the answer> if the issue and plan tell you, or "
            "HUMAN: <why> if only the person who filed the issue can answer.",
            ("ANSWER", "HUMAN"),
            needs_text=True,
        )
        return None if found is None else Answer(found[0] == "HUMAN", found[1])

    def advise(self, problem: str, tried: list[str]) -> str | None:
        tried_text = "\n".join(f"- {t}" for t in tried) or "- nothing yet"
        found = self._decide(
            "help",
            f"Another agent is stuck on a task.\n\nWhat fails:\n{problem}\n\nWhat it "
            f"tried:\n{tried_text}\n\nIf you can help, answer HELP: <concrete advice>. Otherwise "
            "answer CANNOT.",
            ("HELP", "CANNOT"),
            needs_text=False,
        )
        return found[1] if found is not None and found[0] == "HELP" and found[1] else None


class NoThinker:
    """An agent without a model: it reviews nothing, cannot revise or answer, offers no advice."""

    def review(self, issue: Issue, plan: str) -> Reply | None:
        return None

    def rule(self, issue: Issue, plan: str, objection: str) -> Ruling | None:
        return None

    def answer(self, issue: Issue, plan: str, question: str) -> Answer | None:
        return None

    def advise(self, problem: str, tried: list[str]) -> str | None:
        return None


def pick_thinker(endpoints: list[str], model: str | None, *, timeout_s: float = 120.0) -> Thinker:
    """A ModelThinker on the first endpoint that answers and has `model` (or any model); else NoThinker."""
    for url in endpoints:
        try:
            models = list_models(url, timeout_s=10.0)
        except Exception as err:
            log.info("ollama endpoint not answering", url=url, error=str(err)[:200])
            continue
        chosen = choose_model(frozenset(), models, model)
        if chosen is not None:
            return ModelThinker(url, chosen, timeout_s=timeout_s)
    return NoThinker()
