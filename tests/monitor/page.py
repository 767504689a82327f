"""The monitor's page as the tests and benchmarks drive it, by the DOM its contract gives:
tabs `a[data-tab]` showing `section#<tab>`, `tr[data-node-id]` rows whose log key opens the log
view, `section#logs` a virtual list of `[data-log-entry]`."""

from __future__ import annotations

from typing import Any

from tests.browser import Browser

# Scrolls the log view's scrolling box (whichever element of section#logs scrolls) to its end;
# a virtual list renders only what is in view.
SCROLL_LOG_TO_END = """
const section = document.querySelector('section#logs');
const boxes = [section, ...section.querySelectorAll('*')].filter(
  (e) => e.scrollHeight > e.clientHeight + 4 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowY));
const box = boxes[0] || document.scrollingElement;
if (box.scrollTop + box.clientHeight < box.scrollHeight) {
  box.scrollTop = box.scrollHeight;
  box.dispatchEvent(new Event('scroll'));
}
"""


def by_attribute(browser: Browser, css: str, name: str, value: str) -> Any:
    """The first element matching `css` whose attribute `name` is exactly `value` (a value any
    peer chose: compared in the page, never quoted into a selector), or None."""
    return browser.script(
        "return [...document.querySelectorAll(arguments[0])].find(e => e.getAttribute(arguments[1]) === arguments[2])"
        " || null",
        css,
        name,
        value,
    )


def agent_row(browser: Browser, node_id: str) -> Any:
    return browser.wait(
        lambda d: by_attribute(browser, "section#agents tr[data-node-id]", "data-node-id", node_id),
        f"the row of agent {node_id[:40]!r}",
    )


def open_log(browser: Browser, node_id: str, key: str) -> None:
    """Opens the agent's log in the log view by clicking its key in the agent's row."""
    browser.click_tab("agents")
    row = agent_row(browser, node_id)
    link = browser.wait(
        lambda d: next(
            (
                e
                for e in row.find_elements("css selector", "a, button, [data-log-key]")
                if key[:8] in (e.text + (e.get_attribute("data-log-key") or ""))
            ),
            None,
        ),
        f"the log key in the row of {node_id[:40]!r}",
    )
    link.click()
    browser.visible("section#logs", "the log view")


def page_errors(browser: Browser) -> list[dict[str, Any]]:
    """Console errors (a CSP violation, an exception), but for the browser's own favicon lookup."""
    return [e for e in browser.console() if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
