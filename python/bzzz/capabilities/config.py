"""Where capability detection looks: `CapabilityConfig`, part of the mesh worker's settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bzzz.capabilities.endpoints import normalize_endpoint
from bzzz.capabilities.schema import NAME_MAX_BYTES, U32_MAX, valid_name

__all__ = ["DEFAULT_OLLAMA_ENDPOINT", "DEFAULT_TOOLS", "CapabilityConfig"]

DEFAULT_OLLAMA_ENDPOINT = "http://127.0.0.1:11434"
DEFAULT_TOOLS = (
    "git", "gh", "python3", "pytest", "make", "cargo", "go", "node", "npm",
    "docker", "podman", "ollama", "claude", "aider",
)  # fmt: skip


class CapabilityConfig(BaseModel):
    """Where to look. Unknown keys are refused, so a typo does not silently drop a setting."""

    model_config = ConfigDict(extra="forbid")

    ollama_endpoints: list[str] = Field(
        default_factory=lambda: [DEFAULT_OLLAMA_ENDPOINT],
        description="Ollama servers whose models this agent offers: http(s)://host[:port][/path]. "
        "No port means the scheme's (80/443), not Ollama's 11434.",
    )
    tools: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TOOLS), description="CLI tools to look up on PATH, by name."
    )
    probe_timeout_s: float = Field(
        default=2.0, gt=0, allow_inf_nan=False, description="Longest wait for all Ollama endpoints together."
    )
    gpu_timeout_s: float = Field(
        default=10.0, gt=0, allow_inf_nan=False, description="Longest run of each GPU query command."
    )
    max_tasks: int = Field(default=1, ge=0, le=U32_MAX, description="Tasks this agent runs at once.")

    @field_validator("ollama_endpoints")
    @classmethod
    def _endpoints_are_http_urls(cls, endpoints: list[str]) -> list[str]:
        out: list[str] = []
        for endpoint in endpoints:
            url = normalize_endpoint(endpoint)
            if url not in out:
                out.append(url)
        return out

    @field_validator("tools")
    @classmethod
    def _tools_are_plain_names(cls, tools: list[str]) -> list[str]:
        out: list[str] = []
        for tool in tools:
            name = tool.strip()
            if not valid_name(name) or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
                raise ValueError(f"tool {tool!r} must be a command name (no path), 1..={NAME_MAX_BYTES} bytes")
            if name not in out:
                out.append(name)
        return out
