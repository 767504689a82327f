"""The metrics tests' agents, and reading their `/metrics` as Prometheus would: over HTTP, parsed by
prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bzzz.paths import metrics_addr
from tests.agents import Agent, wait_until

METRICS = '\n[metrics]\nlisten = "127.0.0.1:0"\n'  # `extra` of start_agent: the endpoint on any free port
LOG = {"module": "bzzz.workers.log"}
PROBE = {"module": "bzzz.testing.probe", "heartbeat_timeout_s": 5.0}


def github_worker(forge_url: str, token_file: Path, **settings: object) -> dict[str, object]:
    """agent-1's github worker on `forge_url`, polling fast; `settings` override its settings."""
    return {
        "module": "bzzz.workers.github",
        "heartbeat_timeout_s": 30.0,
        "settings": {
            "base_url": forge_url,
            "login": "agent-1",
            "repos": ["alice/tasks"],
            "poll_interval_s": 0.3,
            "settle_s": 0.05,
            "pace_s": 0,
            **settings,
        },
        "env": {"GITHUB_TOKEN_FILE": str(token_file)},
    }


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Scrape:
    """One scrape's samples, by name (with `_total`, `_bucket`... as exposed)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples = [
            Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]

    def all(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def get(self, name: str, **labels: str) -> float | None:
        """The value of the one sample with these labels (and no others), or None if absent."""
        found = [s.value for s in self.all(name) if s.labels == labels]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None

    def names(self) -> set[str]:
        return {s.name for s in self.samples}


def address(agent: Agent) -> str:
    path = metrics_addr(agent.run_dir)
    wait_until(path.exists, 30, "the agent's metrics.addr")
    return path.read_text().strip()


def scrape(agent: Agent) -> Scrape:
    response = httpx.get(f"http://{address(agent)}/metrics", timeout=10.0)
    response.raise_for_status()
    return Scrape(response.text)


def scraped(agent: Agent, predicate: Callable[[Scrape], bool], timeout: float, what: str) -> Scrape:
    """The first scrape for which `predicate(scrape)` is true (waiting up to `timeout`)."""
    last: list[Scrape] = []

    def check() -> Scrape | None:
        current = scrape(agent)
        last[:] = [current]
        return current if predicate(current) else None

    try:
        result: Scrape = wait_until(check, timeout, what)
    except AssertionError as error:
        raise AssertionError(f"{error}; last scrape:\n{last[0].text if last else '(none)'}") from None
    return result
