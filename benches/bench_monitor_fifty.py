"""The Mesh Visualizer's page load with fifty agents: from navigation to the agents table holding
all fifty live rows.

Fifty writers in one real mesh node (`tests.monitor.fifty`: each its own key, signed log of 2,000
entries and signed capability broadcasts) and a real `bzzz monitor`, all fifty logs copied and
indexed before anything is timed. Each round loads the page afresh in Debian's Chromium
(headless); a MutationObserver installed before the page's own scripts (DevTools
`Page.addScriptToEvaluateOnNewDocument`) notes `performance.now()` (milliseconds since the
navigation started) when the fiftieth live row is in the DOM. p50/p99 are printed by
`make bench`; nothing is asserted on time.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from selenium.webdriver.chromium.webdriver import ChromiumDriver

from benches.bench_mesh import percentile
from benches.rates import FIGURES
from tests.agents import free_port, wait_until
from tests.browser import Browser
from tests.monitor.fifty import address, fifty_node, write_writers
from tests.monitor.harness import DEADLINE_S, Api, monitor_for
from tests.monitor.test_fifty_agents import AGENTS, ENTRIES_EACH, INTERVAL_S, replicated
from tests.monitor.test_scale import indexed

ROUNDS = 10

# Before the page's scripts: the moment the agents table first holds WANT live rows.
TIME_ROWS = """
window.__bzzzRowsAt = null;
new MutationObserver((_, observer) => {
  const rows = document.querySelectorAll('section#agents tr[data-node-id][data-live="true"]').length;
  if (rows >= WANT) { window.__bzzzRowsAt = performance.now(); observer.disconnect(); }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def test_page_load_to_fifty_live_rows(browser: Browser, tmp_path: Path) -> None:
    root = tmp_path / "fifty"
    root.mkdir()
    writers = write_writers(root, AGENTS, ENTRIES_EACH)
    total = sum(w.length for w in writers)
    port = free_port()
    with monitor_for(tmp_path, [address(root, port)]) as monitor, fifty_node(root, INTERVAL_S, port):
        api = Api(monitor)
        try:
            wait_until(lambda: replicated(api, writers) == total, DEADLINE_S * 4, "100,000 entries replicated")
            wait_until(lambda: indexed(api) >= total, DEADLINE_S * 4, "100,000 entries indexed")
            timer = TIME_ROWS.replace("WANT", str(AGENTS))
            assert isinstance(browser.driver, ChromiumDriver)  # DevTools commands are Chromium's
            browser.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": timer})
            loads: list[float] = []
            for _ in range(ROUNDS):
                browser.open(monitor.url)
                loads.append(float(browser.wait(lambda d: browser.script("return window.__bzzzRowsAt"), "50 rows")))
            browser.screenshot("fifty-rows-after-the-benchmark")
        finally:
            api.close()
    FIGURES["monitor: page load to 50 live agent rows"] = (
        f"p50 {statistics.median(loads):.0f} ms, p99 {percentile(loads, 0.99):.0f} ms "
        f"(Chromium, 50 agents, 100,000 entries indexed, {len(loads)} loads)"
    )
    print(FIGURES["monitor: page load to 50 live agent rows"])
