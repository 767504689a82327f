"""`[workers.monitor.settings]`: what the monitor serves and how much of anything it keeps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_HTTP = "127.0.0.1:8700"


def parse_host_port(value: str) -> tuple[str, int]:
    """("HOST", PORT) from "HOST:PORT" (IPv6 in brackets); ValueError saying what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT with a port in 0..65535, got {value!r}")
    return host.strip("[]"), int(port)


class MonitorSettings(BaseModel):
    """Safe defaults: the page on loopback only, every peer string capped at 2 KiB."""

    model_config = ConfigDict(extra="forbid")

    http: str = Field(
        default=DEFAULT_HTTP, description="HOST:PORT the page and its API are served on (port 0: any free port)."
    )
    text_max_bytes: int = Field(
        default=2048, ge=64, le=1 << 20, description="Longest string from a peer or a log kept or sent, in UTF-8 bytes."
    )
    page_max: int = Field(default=500, ge=1, le=500, description="Most log entries one /api/logs page returns.")
    poll_s: float = Field(default=0.5, gt=0, le=60, description="How often the mesh and the replicas are looked at.")
    follow_retry_s: float = Field(
        default=5.0, gt=0, description="How long to wait before asking the mesh again to follow a log it could not."
    )
    index_batch: int = Field(
        default=5000, ge=1, description="Most entries of one log indexed per look (the rest on the next)."
    )
    agents_max: int = Field(
        default=1000, ge=1, description="Agents remembered, live or gone (those gone longest are forgotten first)."
    )
    tasks_max: int = Field(default=10_000, ge=1, description="Tasks remembered (the oldest go first).")
    events_per_task_max: int = Field(default=200, ge=1, description="Timeline items kept per task.")
    messages_max: int = Field(default=50_000, ge=1, description="Discussion messages remembered in all.")

    @field_validator("http")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_host_port(value)
        return value
