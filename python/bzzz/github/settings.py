"""`[workers.github.settings]`: where the github worker takes work, what it claims, how it paces itself.

Checked when the agent's config is read (`bzzz.config`) and shown with their sources by
`bzzz config show`. The GitHub token is not a setting: it comes from `GITHUB_TOKEN_FILE` (or
`GITHUB_TOKEN`) in the worker's environment. The github agent takes them as its `Settings`
(`Settings.of`); this module imports only what the model needs: the agent's config is read
before any worker starts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GithubWorkerSettings(BaseModel):
    """`[workers.github.settings]`."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default="https://api.github.com", description="GitHub's API (or a forge's URL).")
    login: str = Field(description="This agent's GitHub login (it assigns itself).")
    repos: list[str] = Field(min_length=1, description="The repositories to take work from (owner/name).")
    include_labels: list[str] = Field(
        default_factory=lambda: ["bzzz-task"], description="Issues must carry every one of these."
    )
    exclude_labels: list[str] = Field(default_factory=list, description="Issues with any of these are skipped.")
    models: list[str] = Field(
        default_factory=list,
        description="Models this agent runs (capabilities), when it runs no mesh worker: with one, the agent "
        "claims with what the mesh advertises.",
    )
    tools: list[str] = Field(
        default_factory=list,
        description="Tools this agent has (capabilities), when it runs no mesh worker (as models).",
    )
    languages: list[str] = Field(default_factory=list, description="Languages this agent works in.")
    poll_interval_s: float = Field(default=15.0, gt=0, description="Seconds between polls (304s are free).")
    max_tasks: int = Field(default=1, ge=1, description="Tasks held at once.")
    lease_s: float = Field(default=300.0, gt=0, description="Seconds a claim lives without renewal.")
    settle_s: float = Field(default=1.0, description="Seconds between assigning and reading back.")
    task_timeout_s: float = Field(default=3600.0, description="Seconds the executor may take.")
    pace_s: float = Field(default=0.25, description="Seconds between GitHub requests (0 for a forge).")
    trust_authors: list[str] = Field(
        default_factory=list,
        description="Claim these authors' issues. With trust_labels: the executor's trust, checked before claiming "
        "(given neither, the executor alone decides).",
    )
    trust_labels: list[str] = Field(
        default_factory=list,
        description="Claim issues with one of these labels once whoever added it approved their exact text "
        "(`bzzz approve <digest>`).",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Attempts the whole mesh makes at an issue that fails for a passing reason."
    )
    retry_backoff_s: float = Field(
        default=60.0, ge=0, description="Seconds after a failed attempt before the next (doubling each time)."
    )
    comments_per_hour: int = Field(
        default=6, ge=2, description="Comments the whole mesh may put on one issue in an hour."
    )


__all__ = ["GithubWorkerSettings"]
