"""The comment budget: how many comments the whole mesh may put on one issue in an hour.

Why. Every comment notifies everyone who watches the issue, and GitHub flags accounts that
create content fast (its secondary rate limits). An issue that fails, however it fails and
however often agents restart, must not turn into a stream of comments: the review saw 115 a
minute. The failure policy (`bzzz.github.agent`) keeps the normal count low; this is the
backstop, and it holds across agents and restarts because it is counted on GitHub itself.

The rule. A comment counts if it is the mesh's: written by a collaborator of the repository
(every agent has push access; a stranger cannot spend an issue's budget) and carrying a
`<!-- bzzz:` marker, which every comment an agent writes does (claims, outcomes, notices). Those
created within the last `window_s` are the spent budget. A comment that does not fit waits
until the oldest counted one leaves the window; nothing is dropped.

    budget = CommentBudget(per_hour=6)
    wait = budget.wait_s(comments, now=server_now, need=2)   # 0.0: room for two now
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["DEFAULT_PER_HOUR", "MARK", "TEAM", "CommentBudget"]

DEFAULT_PER_HOUR = 6
"""Three attempts of a task at two comments each (its claim, its outcome) fit in an hour."""

MARK = "<!-- bzzz:"
TEAM = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


@dataclass(frozen=True)
class CommentBudget:
    per_hour: int = DEFAULT_PER_HOUR
    window_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.per_hour < 2:
            raise ValueError("a comment budget below 2 leaves no room for a claim and its outcome")

    def spent(self, comments: Iterable[Any], now: float) -> list[float]:
        """Creation times (epoch) of the mesh's comments within the window, oldest first.

        `comments` are PyGithub `IssueComment`s or the API's JSON objects."""
        times = []
        for comment in comments:
            body, association, created = _fields(comment)
            if MARK in body and association in TEAM and created is not None and now - created < self.window_s:
                times.append(created)
        return sorted(times)

    def wait_s(self, comments: Iterable[Any], now: float, need: int = 1) -> float:
        """0.0 if `need` more comments fit now, else the seconds until they do."""
        times = self.spent(comments, now)
        over = len(times) + need - self.per_hour
        if over <= 0:
            return 0.0
        if over > len(times):
            return self.window_s  # more than a whole window asked for: try again in one
        return max(0.0, times[over - 1] + self.window_s - now)


def _fields(comment: Any) -> tuple[str, str, float | None]:
    if isinstance(comment, dict):
        body, association, created = comment.get("body"), comment.get("author_association"), comment.get("created_at")
    else:
        body = getattr(comment, "body", None)
        association = getattr(comment, "author_association", None)
        created = getattr(comment, "created_at", None)
    if isinstance(created, str):
        try:
            created = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            created = None
    return str(body or ""), str(association or ""), created.timestamp() if isinstance(created, datetime) else None
