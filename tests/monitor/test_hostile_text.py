"""A peer's text on the monitor's page is text: a real agent whose node id, tools, models,
discussion and log entries are HTML, scripts and megabytes shows them escaped and capped, and
nothing of them runs or is injected (Chromium, headless).

Positive control: the same strings, as the monitor serves them, put through `innerHTML` in a
throwaway page of the same browser do run (an alert, `window.__pwned` set) and do inject
elements: the payloads are live, so the page is what stops them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bzzz.hmmm.client import HmmmClient
from bzzz.log.events import encode_event
from bzzz.log.service import LogClient
from bzzz.mesh.client import MeshClient
from tests.agents import Agent, free_port, wait_until
from tests.browser import Browser
from tests.executor.fake_ollama import fake_ollama
from tests.hmmm.cluster import workers
from tests.monitor.harness import monitor_for
from tests.monitor.page import open_log, read

MARK = "bzzz-injected"
CAP_BYTES = 2048  # the monitor's cap on a peer's string (contract: 2 KiB of UTF-8 by default)
SLACK = 256  # room for what the page shows beside a cut text (its mark, an entry's index and size)


def payload(tag: str) -> str:
    """Markup that, parsed as HTML, runs (an alert, `window.__pwned`) and injects an element."""
    return (
        f"<img src=x onerror=\"window.__pwned='{tag}';alert('{tag}')\">"
        f"<script>window.__pwned='{tag}'</script><b id=\"{MARK}-{tag}\">{tag}</b>"
    )


def script(tag: str) -> str:
    """The part of `payload(tag)` that reads the same however the text is quoted (JSON or not)."""
    return f"<script>window.__pwned='{tag}'</script>"


def slashless(tag: str) -> str:
    """The same without "/" (a file name: tools are advertised only if found on PATH)."""
    return f"<img src=x onerror=\"window.__pwned='{tag}';alert('{tag}')\"><b id=\"{MARK}-{tag}\">{tag}"


NODE_ID = payload("node")
TOOL = slashless("tool")
MODEL = payload("model")
REPO, NUMBER = "acme/widgets", 7
TASK = f"{REPO}#{NUMBER}"
# A plan as long as the envelope's text field allows (8 KiB), and an entry of megabytes: each
# ends with a mark that a capped page never shows.
PLAN = (payload("plan") * 80)[:7900] + "END-OF-PLAN"
HUGE = (payload("entry") * 20_000)[: 2 << 20] + "END-OF-ENTRY"
EVENT_TEXT = payload("event")


def hostile_agent(start_agent: Callable[..., Agent], tmp_path: Path, model_url: str) -> Agent:
    """A real agent (log, mesh and hmmm workers) named with markup, with a tool named with markup
    on its PATH and a model server whose one model is named with markup."""
    bin_dir = tmp_path / "hostile-bin"
    bin_dir.mkdir()
    tool = bin_dir / TOOL
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    config = workers(port=free_port(), tools=(TOOL, "sh"), ollama=model_url, hmmm_settings={"gather_s": 1})
    config["mesh"]["env"] = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    agent = start_agent(config, name="hostile", node_id=NODE_ID)
    agent.wait_running("mesh", timeout=60)
    agent.wait_running("hmmm", timeout=60)
    return agent


def injected(browser: Browser) -> dict[str, Any]:
    """What a payload would have left on the page had it been parsed as HTML."""
    result: dict[str, Any] = browser.script(
        f"""return {{
          pwned: typeof window.__pwned === 'undefined' ? null : String(window.__pwned),
          marked: document.querySelectorAll('[id^="{MARK}"]').length,
          images: document.querySelectorAll('img[src="x"]').length,
          inlineScripts: [...document.scripts].filter(s => !s.src).length,
        }};"""
    )
    result["alert"] = browser.alert()
    return result


NOTHING = {"pwned": None, "marked": 0, "images": 0, "inlineScripts": 0, "alert": None}


def capped(text: str) -> bool:
    return len(text.encode()) <= CAP_BYTES + SLACK


def test_markup_scripts_and_megabytes_from_a_peer_show_as_escaped_capped_text_and_nothing_runs(
    start_agent: Callable[..., Agent], browser: Browser, tmp_path: Path
) -> None:
    with fake_ollama([MODEL], ["ACK"]) as model:
        agent = hostile_agent(start_agent, tmp_path, model.url)
        address = wait_until(lambda: MeshClient(agent.run_dir).status()["listen"], 60, "the agent listening")[0]
        with monitor_for(tmp_path, [address]) as monitor:
            run(agent, browser, monitor.url)


def run(agent: Agent, browser: Browser, page: str) -> None:
    # What the peer says and writes, through the real paths: its log and a discussion.
    with LogClient(agent.run_dir, sender="test", timeout_s=120.0) as log:
        log.append([encode_event("note", text=EVENT_TEXT), HUGE.encode()])
    HmmmClient(agent.run_dir, sender="test", timeout_s=30.0).discuss(
        REPO, NUMBER, payload("title"), payload("body"), PLAN, window_s=1, timeout_s=120
    )

    def hostile_row() -> dict[str, Any] | None:
        rows = httpx.get(f"{page}api/agents", timeout=30).json()["agents"]
        return next((r for r in rows if r["node_id"] == NODE_ID and r["live"] and r["models"]), None)

    served = wait_until(hostile_row, 120, "the monitor serving the hostile agent with its models")
    # The monitor hands the strings on unchanged (they are short): the page alone must escape them.
    assert MODEL in served["models"] and TOOL in served["tools"]
    key = served["log_key"]

    def log_held() -> bool:
        got = httpx.get(f"{page}api/logs/{key}", params={"start": 0, "limit": 500}, timeout=60).json()
        return any(script("entry") in e["text"] and e["truncated"] and e["size"] > 2 << 20 for e in got["entries"])

    wait_until(log_held, 180, "the monitor holding the 2 MiB entry, verified, served cut")

    browser.open(page)
    browser.attribute("body", "data-connected", "true")

    # Agents: the row's text is the markup itself, visible.
    browser.click_tab("agents")
    text = read(browser, "section#agents tr[data-node-id]", "data-node-id", NODE_ID)["text"]
    assert NODE_ID in text and MODEL in text and TOOL in text, text
    browser.screenshot("agents-row-escaped")
    assert injected(browser) == NOTHING

    # Topology: the node is drawn under its id, as text.
    browser.click_tab("topology")
    node = read(browser, "section#topology [data-node-id]", "data-node-id", NODE_ID, "the hostile node drawn")
    assert NODE_ID in node["content"]  # its label and title, as text
    browser.screenshot("topology-escaped")
    assert injected(browser) == NOTHING

    # Discussions: the plan is shown as text, cut to the cap (its end never reaches the page).
    browser.click_tab("discussions")
    shown = read(browser, f'[data-discussion="{TASK}"] .message .text', what="the hostile plan shown")["text"]
    assert shown.startswith(payload("plan")) and "END-OF-PLAN" not in shown and capped(shown), shown[:200]
    browser.screenshot("discussion-escaped-capped")
    assert injected(browser) == NOTHING

    # Logs: the event's text and the 2 MiB entry, escaped and cut.
    open_log(browser, NODE_ID, key)
    entries = browser.wait(
        lambda d: (
            (found := [e.text for e in browser.all("section#logs [data-log-entry]") if "window.__pwned" in e.text])
            and len(found) >= 2
            and found
        ),
        "the hostile entries shown",
    )
    assert any(script("event") in t for t in entries), entries
    huge = [t for t in entries if script("entry") in t]
    assert huge and all("END-OF-ENTRY" not in t and capped(t) for t in huge), [t[:100] for t in huge]
    browser.screenshot("log-escaped-capped")
    assert injected(browser) == NOTHING

    # Positive control: the same strings, as the monitor served them, through innerHTML.
    strings = {"node": served["node_id"], "model": MODEL, "tool": TOOL}
    monitor_tab = browser.driver.current_window_handle
    browser.driver.switch_to.new_window("tab")
    browser.open("data:text/html,<!doctype html><title>control</title><body></body>")
    for tag, markup in strings.items():
        browser.script("document.body.innerHTML = arguments[0]", markup)
        browser.wait(lambda d, tag=tag: browser.alert() == tag, f"the {tag} payload's alert")
        browser.driver.switch_to.alert.accept()
        got = injected(browser)
        assert got["pwned"] == tag and got["marked"] == 1 and got["images"] == 1, got
    browser.screenshot("control-payloads-run-through-innerHTML")
    browser.driver.close()
    browser.driver.switch_to.window(monitor_tab)
    assert injected(browser) == NOTHING  # and the monitor's page, still open, is untouched
