"""The task's values: which issue (`IssueRef`), what it asks (`TaskSpec`), how it ended (`Outcome`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import msgspec

__all__ = ["IssueRef", "Outcome", "TaskSpec"]


class IssueRef(NamedTuple):
    """An issue: its repository (`owner/name`) and number; written `owner/name#12`."""

    repo: str
    number: int

    def __str__(self) -> str:
        return f"{self.repo}#{self.number}"


@dataclass(frozen=True)
class TaskSpec:
    """What an issue needs, from its labels and its `bzzz-task` block together (`bzzz.tasks`).

    `problems` non-empty means the requirements could not be read, and the issue must not be
    taken; the other fields then hold only what could be read.
    """

    needs_models: frozenset[str] = frozenset()
    needs_tools: frozenset[str] = frozenset()
    needs_languages: frozenset[str] = frozenset()
    needs_tools_or_languages: frozenset[str] = frozenset()
    """From bare `needs:<name>` labels: met by a tool or a language of that name."""
    estimate_minutes: int | None = None
    split: bool = False
    run: tuple[tuple[str, ...], ...] = ()
    """Commands to run in the repository (each a program and its arguments), in order."""
    check: tuple[tuple[str, ...], ...] = ()
    """The project's checks that a model's change must pass."""
    problems: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        return not self.problems


class Outcome(msgspec.Struct, frozen=True):
    """How a task ended, as the executor reports it and the github agent acts on it."""

    ok: bool
    summary: str
    """Goes into the issue's comment."""
    retry_elsewhere: bool = False
    """Failed in a way another agent might not: the claim is given back for another attempt."""
    pull_request: str | None = None
    """The pull request's URL, when one was opened or updated."""
    follow_ups: tuple[tuple[str, str], ...] = ()
    """(title, body) of the issues the task was split into."""
