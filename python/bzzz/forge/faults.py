"""Fault injection, off by default: latency with jitter, a rate of 5xx answers, outage windows.

For tests and demos of what agents do when GitHub is slow or down. It wraps the whole app
(REST and git alike) except the forge's own admin endpoints under `/_forge/`, so a test can
always turn it off again. Draws come from one seeded generator: a run with the same seed and
the same requests fails the same ones.
"""

from __future__ import annotations

import json
import random
import threading
import time

import anyio
from pydantic import BaseModel, Field, model_validator
from starlette.types import ASGIApp, Receive, Scope, Send


class FaultSettings(BaseModel):
    latency_ms: float = Field(default=0, ge=0, description="Added to every request.")
    jitter_ms: float = Field(default=0, ge=0, description="Plus or minus this much, uniformly.")
    error_rate: float = Field(default=0, ge=0, le=1, description="Share of requests answered with `error_status`.")
    error_status: int = Field(default=503, ge=500, le=599)
    outages: list[tuple[float, float]] = Field(
        default_factory=list, description="[start, end) windows, seconds since the settings took effect: all 503."
    )
    seed: int | None = None

    @model_validator(mode="after")
    def _windows_are_ordered(self) -> FaultSettings:
        for start, end in self.outages:
            if not 0 <= start < end:
                raise ValueError(f"outage window [{start}, {end}) must have 0 <= start < end")
        return self


class Faults:
    """ASGI middleware applying the current `FaultSettings` (replaceable at run time)."""

    def __init__(self, app: ASGIApp, settings: FaultSettings | None = None) -> None:
        self.app = app
        self._lock = threading.Lock()
        self.update(settings or FaultSettings())

    def update(self, settings: FaultSettings) -> None:
        with self._lock:
            self.settings = settings
            self.since = time.monotonic()
            self._random = random.Random(settings.seed)

    def _draw(self) -> tuple[float, int | None]:
        with self._lock:
            s = self.settings
            delay = max(0.0, s.latency_ms + (self._random.uniform(-s.jitter_ms, s.jitter_ms) if s.jitter_ms else 0))
            elapsed = time.monotonic() - self.since
            if any(start <= elapsed < end for start, end in s.outages):
                return delay / 1000, 503
            if s.error_rate and self._random.random() < s.error_rate:
                return delay / 1000, s.error_status
            return delay / 1000, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_forge/"):
            await self.app(scope, receive, send)
            return
        delay, status = self._draw()
        if delay:
            await anyio.sleep(delay)
        if status is None:
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "message": "Service Unavailable (injected fault)",
                "documentation_url": "https://docs.github.com/rest",
                "status": str(status),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = ["FaultSettings", "Faults"]
