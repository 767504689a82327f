"""The monitor's page in a real browser (Debian's Chromium, headless) while three agents work a
forge's issues: what an operator sees is the mesh as it is, updated live without a reload.

Selectors are the ones the page promises to keep (python/bzzz/monitor/static/app.js): tabs
`a[data-tab]`, sections `section#<tab>`, `[data-peer-id][data-live]` in the topology,
`tr[data-node-id]` for agents, `[data-task][data-state]`, `[data-discussion] .message`,
`[data-log-entry]`, `[data-proof]` and `.proof`, `body[data-connected]`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from bzzz.cli.demo import AGENTS
from bzzz.log.service import LogClient
from tests.agents import wait_until
from tests.browser import Browser
from tests.monitor.page import SCROLL_LOG_TO_END, open_log, page_errors, read
from tests.monitor.working_mesh import WorkingMesh, task, working_mesh

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="the agents' executors need bubblewrap")

# Installed once after the page loads. A reload would drop it, so finding it later proves the
# page changed in place; it also records each state a task's element showed, in order.
WATCH = """
window.__bzzzSince = Date.now();
window.__bzzzStates = {};
const note = () => {
  for (const el of document.querySelectorAll('[data-task]')) {
    const seen = (window.__bzzzStates[el.getAttribute('data-task')] ||= []);
    const state = el.getAttribute('data-state');
    if (seen[seen.length - 1] !== state) seen.push(state);
  }
};
new MutationObserver(note).observe(document.body,
  {subtree: true, childList: true, attributes: true, attributeFilter: ['data-state', 'data-task']});
note();
"""

BEFORE_PR = {"claimed", "discussing", "executing"}
LONG_LOG = 3_000  # entries appended to one agent's log: far more than a page renders at once


def live_agents(browser: Browser) -> dict[str, str]:
    """node id -> peer id of the agents the topology draws as live."""
    found: dict[str, str] = browser.script(
        """const out = {};
        for (const el of document.querySelectorAll('section#topology [data-peer-id][data-live="true"]'))
          out[el.getAttribute('data-node-id')] = el.getAttribute('data-peer-id');
        return out;"""
    )
    return {node: peer for node, peer in found.items() if node in AGENTS}


def not_reloaded(browser: Browser) -> bool:
    return bool(browser.script("return typeof window.__bzzzSince === 'number'"))


def test_the_page_shows_three_agents_at_work_live_a_task_to_its_pr_a_discussion_and_an_agent_leaving_and_back(
    browser: Browser, tmp_path: Path
) -> None:
    with working_mesh(tmp_path / "mesh") as mesh:
        browser.open(mesh.page_url)
        browser.attribute("body", "data-connected", "true")
        browser.script(WATCH)

        # Topology: the three agents, live, and the connections between them.
        browser.click_tab("topology")
        peers = browser.wait(lambda d: (p := live_agents(browser)) and len(p) == 3 and p, "three live agents drawn")
        browser.wait(
            lambda d: any(
                a in edge.split() and b in edge.split()
                for edge in [e.get_attribute("data-edge") or "" for e in browser.all("section#topology [data-edge]")]
                for a in peers.values()
                for b in peers.values()
                if a != b
            ),
            "an edge between two agents",
        )
        browser.screenshot("topology-three-agents")

        browser.click_tab("agents")
        for name in AGENTS:
            browser.attribute(f'section#agents tr[data-node-id="{name}"]', "data-live", "true")
        browser.screenshot("agents-three-rows")

        # A task filed after the page loaded goes from claimed to its PR on screen.
        browser.click_tab("tasks")
        first = mesh.file_issue(
            "Bump the version to 0.2.0", task("The next release is 0.2.0.", "sed -i s/0.1.0/0.2.0/ VERSION")
        )
        browser.attribute(f'[data-task="{first}"]', "data-state", "pr", timeout=300)
        states = browser.script("return window.__bzzzStates[arguments[0]] || []", first)
        assert states[-1] == "pr" and BEFORE_PR & set(states[:-1]), states
        kinds = browser.script(
            "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute('data-kind'))",
            f'[data-task="{first}"] [data-kind]',
        )
        assert {"claim_won", "task_finished"} <= set(kinds), kinds  # its timeline, claim to outcome
        assert any(f"(#{first.rsplit('#', 1)[1]})" in str(p["title"]) for p in mesh.pulls())  # as the forge says
        browser.screenshot("task-claimed-to-pr")

        # A discussion appears live: the plan of an issue filed while the tab is open.
        browser.click_tab("discussions")
        second = mesh.file_issue("Sort the word list", task("Keep words.txt sorted.", "sort -o words.txt words.txt"))
        message = read(browser, f'[data-discussion="{second}"] .message', "data-verified", "true", timeout=300)
        keys = {mesh.log_key(name) for name in AGENTS}
        assert message["attrs"]["data-log-key"] in keys and "Sort the word list" in message["content"], message
        browser.screenshot("discussion-live")

        # An agent shut down is shown gone, and live again once restarted (same peer id).
        browser.click_tab("topology")
        gone = peers["agent-3"]
        mesh.shutdown_agent("agent-3")
        browser.attribute(f'section#topology [data-peer-id="{gone}"]', "data-live", "false", timeout=120)
        browser.screenshot("agent-3-gone")
        browser.click_tab("agents")
        browser.attribute('section#agents tr[data-node-id="agent-3"]', "data-live", "false")
        mesh.start_agent("agent-3")
        browser.attribute('section#agents tr[data-node-id="agent-3"]', "data-live", "true", timeout=120)
        browser.click_tab("topology")
        browser.attribute(f'section#topology [data-peer-id="{gone}"]', "data-live", "true")
        browser.screenshot("agent-3-back")

        # The log view: a long log opened from the agent's row, scrolled to its end, a proof shown.
        key = mesh.log_key("agent-1")
        with LogClient(mesh.run_dir("agent-1"), sender="test", timeout_s=60.0) as log:
            for first_n in range(0, LONG_LOG, 500):
                log.append([f"long log line {n}".encode() for n in range(first_n, first_n + 500)])
        length = wait_for_length(mesh, key, LONG_LOG)
        open_log(browser, "agent-1", key)
        browser.element('section#logs [data-log-entry="0"]', "the log's first entry")
        browser.screenshot("log-opened")
        last = length - 1

        def scrolled_to_end(_: Any) -> bool:
            browser.script(SCROLL_LOG_TO_END)
            return browser.count(f'section#logs [data-log-entry="{last}"]') == 1

        browser.wait(scrolled_to_end, f"entry {last} shown at the end of the log")
        assert browser.count("section#logs [data-log-entry]") < length / 2  # a window of it, not all
        browser.click(f'section#logs [data-proof="{last}"]')
        proof = read(browser, ".proof", "data-verified", "true", "the entry's proof, verified")
        assert f"entry {last} " in proof["content"] and key in proof["content"], proof["content"][:300]
        answer = httpx.get(f"{mesh.page_url}api/logs/{key}/{last}/proof", timeout=30).json()
        assert answer["verified"] is True
        browser.screenshot("log-end-and-proof")

        assert not_reloaded(browser) and browser.element("body").get_attribute("data-connected") == "true"
        assert page_errors(browser) == []


def wait_for_length(mesh: WorkingMesh, key: str, at_least: int) -> int:
    """The length of `key`'s log as the monitor holds it, once it holds `at_least` entries."""

    def held() -> int:
        got = httpx.get(f"{mesh.page_url}api/logs/{key}", params={"start": 0, "limit": 1}, timeout=30).json()
        return int(got["length"]) if got["length"] >= at_least else 0

    return int(wait_until(held, 180, f"the monitor holding {at_least} entries of agent-1's log"))
