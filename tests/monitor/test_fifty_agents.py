"""Fifty agents and 100,000 log entries on the monitor's page, without freezing it: fifty real
writers (each its own key, node id, peer id and signed log of 2,000 entries, gossiping its own
signed capabilities) served by one real mesh node (`tests.monitor.fifty`), and a real
`bzzz monitor` that follows and indexes all fifty logs while a real Chromium shows its page.

Fifty `bzzz agent run` are too heavy for two cores; what one node cannot do for fifty identities,
and how it is done instead, is in `tests.monitor.fifty`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bzzz._core import EnvelopeRejected, Gate, KeyPair, peer_id, sign_envelope
from bzzz.mesh.identity import Identity
from bzzz.mesh.node import TOPIC_CAPABILITIES
from tests.agents import free_port, wait_until
from tests.browser import Browser
from tests.monitor.fifty import REPO, TASKS_PER_WRITER, Writer, address, fifty_node, write_writers
from tests.monitor.harness import DEADLINE_S, Api, monitor_for
from tests.monitor.page import SCROLL_LOG_TO_END, open_log, page_errors
from tests.monitor.test_scale import indexed

AGENTS = 50
ENTRIES_EACH = 2_000
TOTAL = AGENTS * ENTRIES_EACH
INTERVAL_S = 2.0  # the writers' broadcast period: live while heard within 3 of them

# node ids of the live rows of the agents table, and of the live agent nodes of the topology.
LIVE_ROWS = """return [...document.querySelectorAll('section#agents tr[data-node-id][data-live="true"]')]
  .map((e) => e.getAttribute('data-node-id'));"""
LIVE_NODES = """return [...document.querySelectorAll('section#topology [data-peer-id][data-live="true"]')]
  .map((e) => [e.getAttribute('data-node-id'), e.getAttribute('data-peer-id')]);"""


def live_rows(browser: Browser, writers: list[Writer]) -> set[str]:
    names = {w.node_id for w in writers}
    return {n for n in browser.script(LIVE_ROWS) if n in names}


def live_nodes(browser: Browser, writers: list[Writer]) -> dict[str, str]:
    names = {w.node_id for w in writers}
    return {node: peer for node, peer in browser.script(LIVE_NODES) if node in names}


def hidden(browser: Browser, css: str) -> Callable[[Any], bool]:
    return lambda _: not browser.element(css).is_displayed()


def metric(api: Api, name: str) -> float | None:
    for line in api.http.get("/metrics").text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split()[1])
    return None


def replicated(api: Api, writers: list[Writer]) -> int:
    agents = api.agents()
    return sum(min(int(agents.get(w.node_id, {}).get("replica_length") or 0), w.length) for w in writers)


def test_fifty_agents_and_100000_entries_are_shown_live_and_the_page_stays_responsive_while_indexing(
    browser: Browser, tmp_path: Path
) -> None:
    root = tmp_path / "fifty"
    root.mkdir()
    writers = write_writers(root, AGENTS, ENTRIES_EACH)
    assert len({w.peer_id for w in writers}) == len({w.log_key for w in writers}) == AGENTS
    assert sum(w.length for w in writers) == TOTAL
    port = free_port()

    # The monitor and its page first, the writers after: everything the monitor learns and
    # indexes, it does while the page is open.
    with monitor_for(tmp_path, [address(root, port)]) as monitor:
        api = Api(monitor)
        try:
            browser.open(monitor.url)
            browser.attribute("body", "data-connected", "true")
            browser.script("window.__bzzzSince = Date.now();")  # gone if the page reloads
            with fifty_node(root, INTERVAL_S, port):
                # While the monitor follows and indexes: every round the page answers a script,
                # switches sections on a tab click and keeps its live stream.
                rounds, during, shot = 0, 0, None
                deadline = time.monotonic() + DEADLINE_S * 4  # generous: not a measure of speed
                tabs = ("agents", "topology", "tasks", "discussions")
                while True:
                    before = indexed(api)
                    assert browser.script("return document.querySelectorAll('*').length") > 0
                    tab = tabs[rounds % len(tabs)]
                    browser.click_tab(tab)  # and waits for its section to show
                    left = tabs[(rounds - 1) % len(tabs)]
                    browser.wait(hidden(browser, f"section#{left}"), f"section {left} hidden once {tab} is shown")
                    browser.attribute("body", "data-connected", "true")
                    rounds += 1
                    after = indexed(api)
                    during += 0 < before < TOTAL or 0 < after < TOTAL
                    if before >= TOTAL:
                        break
                    if 0 < after < TOTAL and not shot:
                        shot = browser.screenshot("fifty-while-indexing")
                    assert time.monotonic() < deadline, f"indexing did not finish: {indexed(api)} of {TOTAL}"
                print(f"page rounds: {rounds}, of which {during} while the monitor was indexing")

                # Through the API: fifty live agents, fifty logs followed, all copied and indexed.
                wait_until(
                    lambda: {n for n, a in api.agents().items() if a.get("live")} >= {w.node_id for w in writers},
                    DEADLINE_S,
                    "fifty live agents",
                )
                wait_until(lambda: replicated(api, writers) == TOTAL, DEADLINE_S * 4, "100,000 entries replicated")
                wait_until(lambda: indexed(api) >= TOTAL, DEADLINE_S * 4, "100,000 entries indexed")
                assert indexed(api) == TOTAL  # each once
                agents = api.agents()
                for w in writers:
                    row = agents[w.node_id]
                    assert (row["peer_id"], row["log_key"], row["log_length"]) == (w.peer_id, w.log_key, w.length)
                assert metric(api, "bzzz_monitor_followed_logs") == AGENTS
                for w in writers:
                    page = api.get(f"/api/logs/{w.log_key}", start=w.length - 1, limit=1)
                    assert page["length"] == w.length and [e["index"] for e in page["entries"]] == [w.length - 1]
                tasks = api.get("/api/tasks", limit=500)
                assert tasks["total"] == AGENTS * TASKS_PER_WRITER
                assert {t["state"] for t in tasks["tasks"]} == {"pr"}
                discussions = api.get("/api/discussions")["discussions"]
                assert len(discussions) == AGENTS * TASKS_PER_WRITER

                # On the page: fifty live rows, fifty live agent nodes.
                browser.click_tab("agents")
                browser.wait(lambda d: len(live_rows(browser, writers)) == AGENTS, "fifty live rows")
                browser.screenshot("fifty-agents-rows")
                browser.click_tab("topology")
                nodes = browser.wait(
                    lambda d: (n := live_nodes(browser, writers)) and len(n) == AGENTS and n, "fifty agent nodes"
                )
                assert nodes == {w.node_id: w.peer_id for w in writers}
                browser.screenshot("fifty-agents-topology")
                browser.click_tab("tasks")
                browser.wait(
                    lambda d: browser.count(f'[data-task^="{REPO}#"][data-state="pr"]') >= 1, "tasks with their PRs"
                )
                browser.click_tab("discussions")
                browser.wait(lambda d: browser.count("[data-discussion] .message") >= 1, "discussions' messages")
                browser.screenshot("fifty-agents-discussions")

                # The log view of one of them: a window of rows, scrolled to its end.
                one = writers[AGENTS // 2]
                open_log(browser, one.node_id, one.log_key)
                browser.element('section#logs [data-log-entry="0"]', "the log's first entry")
                last = one.length - 1

                def scrolled_to_end(_: Any) -> bool:
                    browser.script(SCROLL_LOG_TO_END)
                    return browser.count(f'section#logs [data-log-entry="{last}"]') == 1

                browser.wait(scrolled_to_end, f"entry {last} shown at the end of the log")
                shown = browser.count("section#logs [data-log-entry]")
                assert 0 < shown < one.length / 2, shown  # a window of it, not all
                browser.screenshot("fifty-agents-log-end")

                assert browser.script("return typeof window.__bzzzSince === 'number'")  # never reloaded
                assert browser.element("body").get_attribute("data-connected") == "true"
                assert page_errors(browser) == []
        finally:
            api.close()


def test_one_host_cannot_gossip_another_identitys_envelope_as_its_own(tmp_path: Path) -> None:
    """Why the fifty-writer node has each identity author its own gossip message: the gate takes
    an envelope only from the peer that signed it, and `publish_signed` sends as the host."""
    host, other = KeyPair.generate(), KeyPair.generate()
    payload = {
        "node_id": "fifty-01",
        "peer_id": Identity(other).peer_id.to_base58(),
        "models": [],
        "tools": [],
        "load_permille": 0,
        "active_tasks": 0,
        "max_tasks": 1,
        "log_key": "a" * 64,
        "version": "0.1.0",
    }
    envelope = sign_envelope(other.secret_key, "capabilities", TOPIC_CAPABILITIES, "fifty-01", payload, seq=1)
    with pytest.raises(EnvelopeRejected) as rejected:
        Gate().admit(envelope, source_peer=peer_id(host.public_key))  # what publish_signed would make of it
    assert rejected.value.reason == "source"
    assert Gate().admit(envelope, source_peer=peer_id(other.public_key)).node_id == "fifty-01"  # its own message
