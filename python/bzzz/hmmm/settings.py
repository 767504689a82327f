"""The hmmm worker's settings: `[workers.hmmm.settings]` (`HmmmWorkerSettings`), of which the
hub's own (`HmmmSettings`) are a part. Only pydantic here: reading a config loads nothing else."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


class HmmmSettings(BaseModel):
    """How this agent discusses: its own plans, and its peers' it follows."""

    model_config = ConfigDict(extra="forbid")

    window_s: float = Field(default=30.0, gt=0, description="Objection period after each plan revision.")
    gather_s: float = Field(
        default=5.0, ge=0, description="Longest wait for followers to join a channel before the plan."
    )
    ttl_s: float = Field(
        default=3600.0, gt=0, description="A discussion's lifetime (the mesh's safeguards enforce theirs)."
    )
    max_revisions: int = Field(default=3, ge=1, description="Plan revisions before an objection stands unruled.")
    message_ttl_s: int = Field(default=600, ge=1, description="Validity of each message sent.")
    follow: bool = Field(default=True, description="Join the channels peers discuss in, and journal them.")
    review: bool = Field(default=True, description="Review peers' plans with this agent's model.")
    relay: bool = Field(default=True, description="Relay help requests this agent cannot answer to peers who join.")
    relay_delay_s: float = Field(
        default=1.5, ge=0, description="Wait before relaying a help request to a peer that joined."
    )


class HmmmWorkerSettings(HmmmSettings):
    """`[workers.hmmm.settings]`: the hub's settings, the model it thinks with, and the webhooks
    escalations go to."""

    model_config = ConfigDict(extra="forbid")

    ollama_endpoints: list[str] = Field(
        default_factory=list,
        description="Ollama endpoints for reviews, rulings, answers and advice, tried in order "
        "(none: this agent follows and journals discussions, and thinks nothing of them).",
    )
    model: str | None = Field(default=None, description="The model to think with (default: the first installed).")
    model_timeout_s: float = Field(default=120.0, gt=0, description="Seconds one model answer may take.")
    n8n_webhook: str | None = Field(default=None, description="Forward escalations to this N8N webhook URL.")
    slack_webhook: str | None = Field(
        default=None,
        description="Forward escalations to this Slack incoming-webhook URL (better: slack_webhook_file).",
    )
    slack_webhook_file: Path | None = Field(
        default=None,
        description="A file holding the Slack webhook URL, which is a secret (used if slack_webhook is not).",
    )

    @field_validator("n8n_webhook", "slack_webhook")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("a webhook must be an http(s) URL")
        return url

    @field_validator("slack_webhook_file")
    @classmethod
    def _holds_a_webhook(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser().absolute()  # relative to where the agent starts, not to the worker
        _read_webhook(path)
        return path

    def slack_url(self) -> str | None:
        """The Slack webhook: `slack_webhook`, else the one in `slack_webhook_file` (read now: never stored)."""
        if self.slack_webhook is not None or self.slack_webhook_file is None:
            return self.slack_webhook
        return _read_webhook(self.slack_webhook_file)


def _read_webhook(path: Path) -> str:
    try:
        url = path.read_text().strip()
    except OSError as err:
        raise ValueError(f"cannot read it: {err.strerror or err}") from None
    if not url.startswith(("http://", "https://")):
        raise ValueError("it does not hold an http(s) URL")  # the URL is a secret: not repeated here
    return url


__all__ = ["HmmmSettings", "HmmmWorkerSettings"]
