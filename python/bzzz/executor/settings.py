"""`[workers.executor.settings]`: what the executor worker runs, whose issues it trusts, its limits.

Checked when the agent's config is read (`bzzz.config`), so a mistake stops the agent before it
starts, and shown with their sources by `bzzz config show`. The GitHub token is not a setting:
it comes from `GITHUB_TOKEN_FILE` (or `GITHUB_TOKEN`) in the worker's environment, and no
setting can put it into a file that others read. This module imports only what the model
needs: the agent's config is read before any worker starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bzzz.executor.sandbox import SANDBOX_UID


class ExecutorWorkerSettings(BaseModel):
    """`[workers.executor.settings]`."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(default="https://api.github.com", description="GitHub's API (or a forge's URL).")
    login: str = Field(description="This agent's GitHub login (commits and pull requests are its).")
    email: str | None = Field(default=None, description="Commit e-mail (default <login>@users.noreply.bzzz).")
    allow: list[str] = Field(default_factory=list, description="The programs tasks may run (bare names).")
    trust_authors: list[str] = Field(default_factory=list, description="Execute these authors' issues.")
    trust_labels: list[str] = Field(
        default_factory=list,
        description="Execute issues with one of these labels, once whoever added it approved their exact text.",
    )
    network: bool = Field(default=False, description="Let task commands reach the network.")
    allow_unsandboxed: bool = Field(
        default=False, description="Run task commands even without bubblewrap (NO filesystem or network isolation)."
    )
    ollama_endpoints: list[str] = Field(
        default_factory=list, description="Ollama endpoints for tasks without `run` commands (the model executor)."
    )
    model: str | None = Field(
        default=None, description="The model to use when a task names none (default: the first installed)."
    )
    rounds: int = Field(default=3, ge=1, description="Tries a model gets, each told why the last failed.")
    help_rounds: int = Field(
        default=3, ge=0, description="Rounds of help from peers (hmmm worker) before a failed task goes to a person."
    )
    help_window_s: float = Field(default=20.0, gt=0, description="Seconds to wait for peers' help each round.")
    discuss: Literal["auto", "required", "off"] = Field(
        default="auto",
        description="Talk each plan over with peers first (the hmmm worker): auto = when the worker runs (waiting "
        "for it while the agent starts), required = never act without it, off = never.",
    )
    model_timeout_s: float = Field(default=300.0, gt=0, description="Seconds one model answer may take.")
    work_dir: Path | None = Field(default=None, description="Where workspaces go (default <data_dir>/workspaces).")
    time_limit_s: float = Field(default=900.0, gt=0, description="Seconds a command may take.")
    cpu_limit_s: int = Field(default=600, gt=0, description="CPU seconds a command may use.")
    memory_limit_mb: int = Field(
        default=4096,
        gt=0,
        description="Memory of a task's processes together (cgroup), and of each one (address space), MiB.",
    )
    process_limit: int = Field(default=256, gt=0, description="Processes a task may have at once.")
    disk_limit_mb: int = Field(
        default=2048, gt=0, description="Disk a task may fill: its workspace and its /tmp together, MiB."
    )
    sandbox_uid: int = Field(
        default=SANDBOX_UID,
        gt=0,
        lt=2**32 - 1,
        description="The unprivileged uid (and gid) tasks run as when the agent is root (not 0).",
    )

    @model_validator(mode="after")
    def _trusts_someone(self) -> ExecutorWorkerSettings:
        if not self.trust_authors and not self.trust_labels:
            raise ValueError(
                "name at least one of trust_authors or trust_labels: issues from anyone are never executed"
            )
        return self


__all__ = ["ExecutorWorkerSettings"]
