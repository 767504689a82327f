"""Debian's real Prometheus, run with the repository's docker/prometheus files, scrapes three live
agents (real `bzzz agent run`: log, mesh, hmmm, github, executor workers) working a forge's
issues, and the monitor where `bzzz monitor` exists: every panel of the Grafana dashboard has
data, the console template renders the same panels (and Chromium screenshots it), and alerts fire
for a fault the test causes.

One mesh and one Prometheus for the module (under a minute to set up here): the tests that read run
first, the ones that break things (a worker killed again and again, an agent killed) last.
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bzzz._core import MerkleLog
from bzzz.mesh.client import MeshClient
from bzzz.paths import DataDir, merkle_dir, metrics_addr
from tests import browser
from tests.agents import Agent, agents_under, free_port, toml_config, wait_until
from tests.forge.harness import Forge, start_forge, stop_forge
from tests.hmmm.cluster import workers as mesh_workers
from tests.issues import comments, github_and_executor, open_issue, token_for
from tests.ops import grafana
from tests.ops.prometheus import (
    CONFIG_DIR,
    DASHBOARD,
    NO_PROM_LIB,
    NOT_INSTALLED,
    PROMETHEUS,
    Prometheus,
    start_prometheus,
    write_targets,
)

HAS_MONITOR = importlib.util.find_spec("bzzz.monitor") is not None
NO_MONITOR = "`bzzz monitor` is not on this branch (issue 20's monitor helper, h/monitor)"

pytestmark = [
    pytest.mark.skipif(PROMETHEUS is None, reason=NOT_INSTALLED),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="the agents' executors need bubblewrap (make sysdeps)"),
]

AGENTS = ("agent-1", "agent-2", "agent-3")
SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
  - {login: agent-2, tokens: [agent-2-token]}
  - {login: agent-3, tokens: [agent-3-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push, agent-2: push, agent-3: push}
    files: {README.md: "# Tasks\\n"}
    labels: [{name: bzzz-task}]
"""
# Work that ends in a pull request, and one task that fails (its command exits 3): every
# outcome the dashboard counts happens.
ISSUES = [
    (f"Write note {n}", f"```bzzz-task\nrun: [\"sh -c 'sleep 1; echo {n} > NOTE-{n}.md'\"]\n```\n") for n in range(1, 6)
] + [("Run the broken script", "```bzzz-task\nrun: [\"sh -c 'echo broken; exit 3'\"]\n```\n")]
OUTCOMES = ("✅ Done", "Could not finish")
# A test's restart intensity: the alert test kills a worker four times within seconds.
SUPERVISOR = {"max_restarts": 20, "max_seconds": 30}


@dataclass
class Mesh:
    forge: Forge
    agents: list[Agent]
    prometheus: Prometheus
    metrics: dict[str, str]  # agent name -> its /metrics address
    monitor: str | None  # the monitor's page URL, where `bzzz monitor` exists
    artifacts: Path

    def window(self) -> grafana.TimeRange:
        """The dashboard's time range: from Prometheus' start until now."""
        return grafana.TimeRange(self.prometheus.started, time.time(), self.prometheus.scrape_interval_s)


def agent_workers(forge: Forge, login: str, home: Path, port: int, bootstrap: list[str]) -> dict[str, dict[str, Any]]:
    crew = mesh_workers(port=port, bootstrap=bootstrap, hmmm_settings={"window_s": 2, "gather_s": 3})
    work = github_and_executor(forge.url, login, token_for(home, login))
    # The executor discusses each plan with its peers first (tasks go through `discussing`).
    work["executor"]["settings"]["discuss"] = "auto"
    return crew | {name: spec for name, spec in work.items() if name != "log"}


def start_monitor(home: Path, bootstrap: str) -> tuple[subprocess.Popen[str], str]:
    """`bzzz monitor` joined to the test's mesh only (no mDNS: other tests' agents may be near)."""
    config = home / "monitor.toml"
    mesh = {
        "listen": ["/ip4/127.0.0.1/tcp/0"],
        "capabilities_interval_s": 1,
        "discovery": {
            "mdns": False,
            "dht": False,
            "bootstrap": [bootstrap],
            "redial_initial_s": 0.2,
            "redial_max_s": 1.0,
        },
    }
    config.write_text(
        toml_config(home / "monitor", {"mesh": {"module": "bzzz.workers.mesh", "settings": mesh}}, node_id="monitor")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    # A file, not a pipe: nobody reads the monitor's output once it has said where it is.
    with (home / "monitor.out").open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bzzz.cli.main",
                "monitor",
                "--config",
                str(config),
                "--http",
                f"127.0.0.1:{free_port()}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )

    def url() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"bzzz monitor exited ({process.returncode}): {(home / 'monitor.out').read_text()}")
        match = re.search(r"monitor at (http://\S+?)/?$", (home / "monitor.out").read_text(), re.M)
        return match.group(1) if match else None

    return process, wait_until(url, 90, "bzzz monitor's URL")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    home = tmp_path_factory.mktemp("live-mesh")
    forge = start_forge(home / "forge", seed=SEED)
    processes: list[subprocess.Popen[str]] = []
    try:
        with agents_under(home) as start, start_prometheus(home / "prometheus", alert_for="2s") as prometheus:
            agents: list[Agent] = []
            bootstrap: list[str] = []
            for name in AGENTS:
                agent = start(
                    agent_workers(forge, name, home, free_port(), bootstrap),
                    supervisor=SUPERVISOR,
                    name=name,
                    node_id=name,
                    extra='[metrics]\nlisten = "127.0.0.1:0"\n',
                )
                agents.append(agent)
                if not bootstrap:
                    agent.wait_running("mesh", timeout=60)
                    bootstrap = [
                        wait_until(lambda a=agent: MeshClient(a.run_dir).status()["listen"], 60, "listening")[0]
                    ]
            metrics = {
                name: wait_until(lambda a=agent: metrics_addr(a.run_dir).read_text().strip(), 60, f"{name}'s /metrics")
                for name, agent in zip(AGENTS, agents, strict=True)
            }
            write_targets(prometheus.home, "agents", list(metrics.values()))
            monitor = None
            if HAS_MONITOR:
                process, monitor = start_monitor(home, bootstrap[0])
                processes.append(process)
                write_targets(prometheus.home, "monitor", [monitor.removeprefix("http://")])
            for agent in agents:
                wait_until(
                    lambda a=agent: len(MeshClient(a.run_dir).peers()) >= len(AGENTS) - 1, 90, "every peer heard"
                )
            numbers = [open_issue(forge, title, body) for title, body in ISSUES]
            for number in numbers:
                wait_until(
                    lambda n=number: any(o in body for body in comments(forge, n) for o in OUTCOMES),
                    300,
                    f"an outcome on issue #{number}",
                )
            # agent-1 follows the others' logs, as the monitor does: replication and its lag.
            for agent in agents[1:]:
                with MerkleLog.open(merkle_dir(DataDir(agent.data_dir).log)) as log:
                    key = log.key.hex()
                job = MeshClient(agents[0].run_dir, timeout_s=10).replicate(key, follow=True, timeout_s=120)
                assert job["state"] == "done", job
            # Every agent scraped a few times since the work ended, so that rate() windows hold it.
            worked = time.time() + 5 * prometheus.scrape_interval_s
            wait_until(
                lambda: len(prometheus.query(f'timestamp(up{{job="bzzz-agent"}} == 1) > {worked}')) == len(AGENTS),
                120,
                "every agent scraped since the work ended",
            )
            yield Mesh(forge, agents, prometheus, metrics, monitor, browser.artifacts_dir("ops-console", home))
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stop_forge(forge)


DASHBOARD_JSON = grafana.load(DASHBOARD)
PANELS = grafana.panels(DASHBOARD_JSON)


def monitor_panel(panel: dict[str, Any]) -> bool:
    return all('job="bzzz-monitor"' in t["expr"] for t in panel["targets"])


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
def test_every_dashboard_panel_has_data_from_the_live_mesh(mesh: Mesh, panel: dict[str, Any]) -> None:
    if monitor_panel(panel) and mesh.monitor is None:
        pytest.skip(NO_MONITOR)
    found = grafana.problems(mesh.prometheus, panel, mesh.window(), grafana.all_values(DASHBOARD_JSON))
    assert not found, "\n".join(found)


def test_a_panel_whose_query_names_a_metric_that_does_not_exist_has_no_data(mesh: Mesh) -> None:
    # The positive control of the test above: the same check fails on a typo'd metric name.
    panel = next(p for p in PANELS if p["title"] == "Connected peers")
    assert not grafana.problems(mesh.prometheus, panel, mesh.window(), grafana.all_values(DASHBOARD_JSON))
    typo = {
        **panel,
        "targets": [{**t, "expr": t["expr"].replace("connected_peers", "conected_peers")} for t in panel["targets"]],
    }
    found = grafana.problems(mesh.prometheus, typo, mesh.window(), grafana.all_values(DASHBOARD_JSON))
    assert found and "bzzz_mesh_conected_peers" in found[0] and found[0].endswith("no data")


def peaks(mesh: Mesh, title: str, label: str) -> dict[str, float]:
    """The highest value each series of a graph panel reached over the test, by `label`."""
    panel = next(p for p in PANELS if p["title"] == title)
    out: dict[str, float] = {}
    for series in grafana.run(mesh.prometheus, panel["targets"][0], mesh.window(), grafana.all_values(DASHBOARD_JSON)):
        values = [float(v) for _, v in series["values"] if v != "NaN"]
        out[series["metric"].get(label, "")] = max(values, default=0.0)
    return out


def test_the_work_the_agents_did_shows_on_the_dashboard_by_outcome(mesh: Mesh) -> None:
    # Five issues became pull requests and one failed: the graphs show both, and claims won.
    finished = peaks(mesh, "Tasks finished by outcome", "outcome")
    assert finished.get("pr", 0) > 0 and finished.get("failed", 0) > 0, finished
    assert peaks(mesh, "Claims by outcome", "outcome").get("won", 0) > 0
    assert peaks(mesh, "Tasks by state", "state").get("done", 0) >= 1
    assert peaks(mesh, "Log length", "instance") and min(peaks(mesh, "Log length", "instance").values()) > 0


def test_the_agent_variable_narrows_every_agent_panel_to_one_agent(mesh: Mesh) -> None:
    one = mesh.metrics["agent-2"]
    panel = next(p for p in PANELS if p["title"] == "Log length")
    expr = grafana.interpolate(
        panel["targets"][0]["expr"], mesh.window().variables({"instance": grafana.chosen_value(one)})
    )
    assert [s["metric"]["instance"] for s in mesh.prometheus.query(expr)] == [one]


def alert_selectors() -> list[tuple[str, str]]:
    """(alert, selector) for every series selector in the alert rules' expressions."""
    rules = yaml.safe_load((CONFIG_DIR / "alerts.yml").read_text())
    found = []
    for rule in (rule for group in rules["groups"] for rule in group["rules"]):
        for selector in re.findall(r"\b(?:bzzz_\w+|up)\b(?:\{[^}]*\})?", rule["expr"]):
            found.append((rule["alert"], selector))
    return sorted(set(found))


@pytest.mark.parametrize(("alert", "selector"), alert_selectors(), ids=[f"{a} {s}" for a, s in alert_selectors()])
def test_every_series_an_alert_rule_reads_is_exported_by_the_live_mesh(mesh: Mesh, alert: str, selector: str) -> None:
    # promtool's cases (tests/ops/alert_cases.yml) feed the rules series of their own making:
    # this is where a rule's names and label values meet what the agents really export.
    if "bzzz_monitor" in selector or "bzzz-monitor" in selector:
        if mesh.monitor is None:
            pytest.skip(NO_MONITOR)
    series = mesh.prometheus.api("series", **{"match[]": selector, "start": mesh.prometheus.started})
    assert series, f"{alert}: nothing matches {selector}"


def test_a_rule_reading_a_label_value_no_agent_exports_would_be_caught(mesh: Mesh) -> None:
    # The positive control of the test above: one letter off, nothing matches.
    start = mesh.prometheus.started
    assert mesh.prometheus.api("series", **{"match[]": 'bzzz_claims_total{outcome="lost"}', "start": start})
    assert not mesh.prometheus.api("series", **{"match[]": 'bzzz_claims_total{outcome="lose"}', "start": start})


@pytest.mark.skipif(NO_PROM_LIB is not None, reason=str(NO_PROM_LIB))
def test_the_console_template_renders_the_panels_with_their_numbers(mesh: Mesh) -> None:
    window = mesh.window()
    # The page's rate window spans the whole test, so that the task durations have their numbers.
    url = f"{mesh.prometheus.url}/consoles/bzzz.html?rate={int(window.end - window.start) + 60}s"
    reply = httpx.get(url, timeout=60)
    assert reply.status_code == 200, reply.text[-2000:]
    page = reply.text
    (mesh.artifacts / "bzzz-console.html").write_text(page)
    for panel in PANELS:
        section = re.search(rf"<h3>{re.escape(html.escape(panel['title']))}</h3>(.*?)</table>", page, re.S)
        assert section, f"no panel {panel['title']!r} on the page"
        values = re.findall(r'<td class="bzzz-value">([^<]*)</td>', section.group(1))
        if monitor_panel(panel) and mesh.monitor is None:
            continue
        assert any(re.fullmatch(r"-?[0-9.]+(e[+-]?\d+)?\s*[kMGTPEZY]?", v.strip()) for v in values), (
            f"{panel['title']}: no number on the page ({values})"
        )
    # Every agent is on the page, by its address (the per-agent panels list them).
    for name, address in mesh.metrics.items():
        assert address in page, name


@pytest.mark.skipif(NO_PROM_LIB is not None, reason=str(NO_PROM_LIB))
@pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))
def test_chromium_draws_the_console_page_and_a_screenshot_is_kept(mesh: Mesh) -> None:
    window = mesh.window()
    span = int(window.end - window.start) + 60
    graphs = [p for p in PANELS if p["type"] == "timeseries"]
    expected = [not (monitor_panel(p) and mesh.monitor is None) for p in graphs]
    with browser.chromium(mesh.artifacts) as chromium:
        chromium.driver.set_window_size(1600, 1200)
        # The graphs' time range: the console's time control reads it from the URL's #pctc.
        control = json.dumps({"duration": span, "endTime": 0})
        chromium.open(f"{mesh.prometheus.url}/consoles/bzzz.html?rate={span}s#pctc{control}")
        assert chromium.count(".bzzz-graph") == len(graphs)
        # prom_console.js fetches each graph's range query and draws its lines (SVG paths).
        chromium.wait(
            lambda d: (
                d.execute_script(
                    "return Array.from(document.querySelectorAll('.bzzz-graph'))"
                    ".map(g => g.querySelectorAll('svg path').length > 0)"
                )
                == expected
            ),
            "every graph of the console drawn with data",
        )
        assert [h.text for h in chromium.all(".bzzz-panel h3")] == [p["title"] for p in PANELS]
        # The whole page in one screenshot: the window as tall as the page.
        chromium.driver.set_window_size(1600, int(chromium.script("return document.body.scrollHeight")) + 120)
        shot = chromium.screenshot("bzzz-console")
        assert shot.stat().st_size > 20_000


def firing(mesh: Mesh, alert: str, **labels: str) -> list[dict[str, Any]]:
    return [
        a
        for a in mesh.prometheus.alerts()
        if a["labels"]["alertname"] == alert
        and a["state"] == "firing"
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def test_a_worker_killed_again_and_again_fires_the_restart_alert(mesh: Mesh) -> None:
    agent, instance = mesh.agents[2], mesh.metrics["agent-3"]
    assert not firing(mesh, "BzzzWorkerRestartingOften", instance=instance)  # none before the fault
    pid = agent.wait_running("hmmm", timeout=30)["pid"]
    for _ in range(4):
        os.kill(pid, signal.SIGKILL)
        pid = agent.wait_running("hmmm", other_than=pid, timeout=60)["pid"]
    alerts = wait_until(
        lambda: firing(mesh, "BzzzWorkerRestartingOften", instance=instance, worker="hmmm"),
        120,
        "the restart alert firing",
    )
    assert alerts[0]["labels"]["severity"] == "warning"
    assert "hmmm" in alerts[0]["annotations"]["summary"] and instance in alerts[0]["annotations"]["summary"]
    # Only the worker that was killed, on the agent it ran on.
    assert not firing(mesh, "BzzzWorkerRestartingOften", worker="log")
    assert not [a for a in firing(mesh, "BzzzWorkerRestartingOften") if a["labels"]["instance"] != instance]


def test_an_agent_that_stops_answering_fires_the_agent_down_alert(mesh: Mesh) -> None:
    agent, instance = mesh.agents[2], mesh.metrics["agent-3"]
    assert not firing(mesh, "BzzzAgentDown")
    agent.process.send_signal(signal.SIGKILL)  # the supervisor, with no chance to say goodbye
    agent.process.wait(30)
    alerts = wait_until(lambda: firing(mesh, "BzzzAgentDown"), 120, "the agent-down alert firing")
    assert [a["labels"]["instance"] for a in alerts] == [instance]
    assert alerts[0]["labels"]["severity"] == "critical"
