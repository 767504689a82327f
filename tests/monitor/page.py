"""The monitor's page as the tests and benchmarks drive it, by the DOM its contract gives:
tabs `a[data-tab]` showing `section#<tab>`, `tr[data-node-id]` rows whose log key opens the log
view, `section#logs` a virtual list of `[data-log-entry]`."""

from __future__ import annotations

from typing import Any

from tests.browser import DEADLINE_S, Browser

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


# The first element matching a selector (and, if given, whose attribute is exactly a value: a
# value a peer chose is compared in the page, never quoted into a selector), read in one go: its
# rendered text, its text content and its attributes. One script, so nothing can be re-rendered
# between finding and reading it.
READ = """
const [css, name, value] = arguments;
const el = [...document.querySelectorAll(css)].find((e) => name === null || e.getAttribute(name) === value);
if (!el) return null;
const attrs = {};
for (const a of el.attributes) attrs[a.name] = a.value;
return {text: el.innerText, content: el.textContent, attrs};
"""


def read(
    browser: Browser,
    css: str,
    name: str | None = None,
    value: str | None = None,
    what: str = "",
    timeout: float = DEADLINE_S,
) -> Any:
    """{"text", "content", "attrs"} of the element, once there is one."""
    where = f" with {name}={value[:40]!r}" if name is not None and value is not None else ""
    return browser.wait(lambda d: browser.script(READ, css, name, value), what or f"{css}{where}", timeout)


# Clicks the log key in an agent's row, found afresh (rows are re-rendered as agents change).
CLICK_LOG_KEY = """
const [nodeId, key] = arguments;
const row = [...document.querySelectorAll('section#agents tr[data-node-id]')].find(
  (e) => e.getAttribute('data-node-id') === nodeId);
const link = row && [...row.querySelectorAll('a, button, [data-log-key]')].find(
  (e) => (e.textContent + (e.getAttribute('data-log-key') || '')).includes(key.slice(0, 8)));
if (!link) return false;
link.click();
return true;
"""


def open_log(browser: Browser, node_id: str, key: str) -> None:
    """Opens the agent's log in the log view by clicking its key in the agent's row."""
    browser.click_tab("agents")
    browser.wait(lambda d: browser.script(CLICK_LOG_KEY, node_id, key), f"the log key in the row of {node_id[:40]!r}")
    browser.visible("section#logs", "the log view")


def page_errors(browser: Browser) -> list[dict[str, Any]]:
    """Console errors (a CSP violation, an exception), but for the browser's own favicon lookup."""
    return [e for e in browser.console() if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
