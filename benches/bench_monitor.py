"""The Mesh Visualizer's latency: from a log append on one of three agents to its entry on the
monitor's page.

Three real agents (log and mesh workers, `bzzz agent run`) and a real `bzzz monitor` on
127.0.0.1. Each round appends one entry to one agent's log (in turn) and waits for it:
- on the page, in Debian's Chromium (headless): the time from just before the append to the
  moment the entry (`[data-log-entry]` holding its text) enters the log view's DOM (a
  MutationObserver's Date.now(), the same clock as the append's time.time()), the page showing
  that agent's log;
- as the companion and baseline figure, the SSE `log` event (`{key, length}`) that a plain HTTP
  client reading `/events` receives.
The entry has to be appended (the log worker) and replicated to the monitor (the mesh) before
either sees it, and the monitor looks at its replicas every `poll_s` (0.5 s by default); the
appends come at random moments of that cycle. The two figures are measured in separate rounds
(the page's rounds also switch the log view between the agents). p50/p99 are printed by
`make bench`; nothing is asserted on time.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benches.bench_mesh import percentile
from benches.rates import FIGURES
from bzzz.log.service import LogClient
from bzzz.monitor.settings import MonitorSettings
from tests.agents import Agent, wait_until
from tests.browser import Browser
from tests.log.test_replication import address, agent_with_log, key_of
from tests.monitor.harness import monitor_for
from tests.monitor.page import SCROLL_LOG_TO_END, open_log

NAMES = ("agent-1", "agent-2", "agent-3")
SSE_ROUNDS = 60
PAGE_ROUNDS = 30

# Records when an entry holding the text `window.__bzzzWant` first enters the DOM, in the page's
# own clock (Date.now()), and keeps the log view scrolled to its end (a virtual list renders only
# what is in view). Installed once; each round sets what it waits for.
OBSERVE_LOG = """
if (!window.__bzzzObserving) {
  window.__bzzzObserving = true;
  const note = () => {
    if (window.__bzzzSeenAt || !window.__bzzzWant) return;
    for (const el of document.querySelectorAll('section#logs [data-log-entry]')) {
      if (el.textContent.includes(window.__bzzzWant)) { window.__bzzzSeenAt = Date.now(); return; }
    }
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
  setInterval(() => { SCROLL }, 20);
}
""".replace("SCROLL", SCROLL_LOG_TO_END)


class LogEvents:
    """`/events` read by a plain HTTP client in a thread: when each log reached each length."""

    def __init__(self, page: str) -> None:
        self._url = f"{page}events"
        self._lengths: dict[str, int] = {}
        self._arrivals: dict[tuple[str, int], float] = {}
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event, data = "", ""
        try:
            with httpx.stream("GET", self._url, timeout=httpx.Timeout(30, read=None)) as answer:
                for line in answer.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif not line:
                        if event == "log":
                            self._arrived(json.loads(data))
                        event, data = "", ""
        except httpx.TransportError:  # the monitor stopped at the end of the benchmark; a wait says so
            pass

    def _arrived(self, item: dict[str, Any]) -> None:
        now = time.time()
        with self._changed:
            key, length = str(item["key"]), int(item["length"])
            for n in range(self._lengths.get(key, 0), length):
                self._arrivals.setdefault((key, n), now)
            self._lengths[key] = max(length, self._lengths.get(key, 0))
            self._changed.notify_all()

    def seen(self, key: str, index: int, timeout: float = 120.0) -> float:
        """When (time.time()) the event that first covered entry `index` of `key` arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: (key, index) in self._arrivals, timeout):
                raise AssertionError(f"no log event for entry {index} of {key[:16]} within {timeout}s")
            return self._arrivals[(key, index)]


@contextmanager
def cluster(start_agent: Callable[..., Agent], tmp_path: Path) -> Iterator[tuple[list[Agent], dict[str, str], str]]:
    """Three agents, each with its own log, and a monitor that follows all three (stopped at the
    end; `start_agent` stops the agents)."""
    first = agent_with_log(start_agent, NAMES[0])
    agents = [first] + [agent_with_log(start_agent, name, [address(first)]) for name in NAMES[1:]]
    keys = {agent.data_dir.name: key_of(agent) for agent in agents}
    monitor = monitor_for(tmp_path, [address(agent) for agent in agents])
    page = monitor.url

    def caught_up() -> bool:
        rows = httpx.get(f"{page}api/agents", timeout=30).json()["agents"]
        live = {r["node_id"]: r for r in rows if r["live"] and r["node_id"] in NAMES}
        return len(live) == 3 and all(r["lag"] == 0 and r["replica_length"] > 0 for r in live.values())

    try:
        wait_until(caught_up, 180, "the monitor following the three logs, caught up")
        yield agents, keys, page
    finally:
        monitor.stop()


def at_a_random_moment() -> None:
    """Not timed: waits a random part of the monitor's cycle (it looks every `poll_s`), so that the
    appends come at any moment of it, as real ones do. Each round would otherwise start just after
    the look that answered the last one, and every figure would be a whole cycle."""
    time.sleep(PHASES.uniform(0.0, MonitorSettings().poll_s))


PHASES = random.Random(20)


def text_of(n: int) -> str:
    return f"bench entry <{n}>"


def append_one(agent: Agent, n: int) -> int:
    with LogClient(agent.run_dir, sender="bench", timeout_s=30.0) as log:
        result = log.append(text_of(n).encode())
    assert not result.error, result.error
    return int(result.first_index)


def test_log_append_to_page_with_three_agents(start_agent, browser: Browser, tmp_path: Path, benchmark) -> None:
    with cluster(start_agent, tmp_path) as (agents, keys, page):
        measure(agents, keys, page, browser, benchmark)


def measure(agents: list[Agent], keys: dict[str, str], page: str, browser: Browser, benchmark: Any) -> None:
    events = LogEvents(page)
    time.sleep(1)  # not timed: the event stream is open before the first append
    rounds = iter(range(10**9))

    def sse_round() -> None:
        n = next(rounds)
        agent = agents[n % 3]
        started = time.time()
        index = append_one(agent, n)
        sse.append(1000 * (events.seen(keys[agent.data_dir.name], index) - started))

    sse: list[float] = []
    benchmark.group = "monitor: log append to its SSE event, 3 agents"
    benchmark.pedantic(sse_round, setup=at_a_random_moment, rounds=SSE_ROUNDS, iterations=1)

    page_ms: list[float] = []
    browser.open(page)
    browser.attribute("body", "data-connected", "true")
    for n in range(PAGE_ROUNDS):
        agent = agents[n % 3]  # each round on the next agent's log, opened from its row
        open_log(browser, agent.data_dir.name, keys[agent.data_dir.name])
        browser.script(OBSERVE_LOG)
        browser.script("window.__bzzzSeenAt = null; window.__bzzzWant = arguments[0]", text_of(10_000 + n))
        at_a_random_moment()
        started = time.time()
        append_one(agent, 10_000 + n)
        seen_at = browser.wait(
            lambda d: browser.script("return window.__bzzzSeenAt"),
            f"entry {text_of(10_000 + n)} of {agent.data_dir.name}'s log on the page",
            timeout=120,
        )
        page_ms.append(float(seen_at) - 1000 * started)
    browser.screenshot("log-view-after-the-benchmark")

    FIGURES["monitor: log append to its entry on the page"] = (
        f"p50 {statistics.median(page_ms):.0f} ms, p99 {percentile(page_ms, 0.99):.0f} ms "
        f"(Chromium, 3 agents, {len(page_ms)} appends)"
    )
    FIGURES["monitor: log append to its SSE event (baseline)"] = (
        f"p50 {statistics.median(sse):.0f} ms, p99 {percentile(sse, 0.99):.0f} ms "
        f"(plain HTTP client, 3 agents, {len(sse)} appends)"
    )
