"""The operator's files under docker/ (Prometheus config and alert rules, the Grafana dashboard
and its provisioning, the console template) are valid for the tools that read them, and the
dashboard and the console template show the same panels."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.ops import grafana
from tests.ops.prometheus import CONFIG_DIR, DASHBOARD, NOT_INSTALLED, PROMTOOL, REPO

needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason=NOT_INSTALLED)
RULES = CONFIG_DIR / "alerts.yml"
GENERATOR = REPO / "tools/observe/dashboards.py"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


@needs_promtool
def test_every_alert_rule_passes_promtool_check_rules() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules())} rules found" in checked.stdout


@needs_promtool
@pytest.mark.parametrize(
    ("what", "bad"),
    [
        ("a PromQL syntax error", ("bzzz_worker_up == 0", "bzzz_worker_up == = 0")),
        ("a bad `for` duration", ("for: 2m", "for: two minutes")),
        (
            "a broken annotation template",
            ('summary: "Agent {{ $labels.instance }} is down"', 'summary: "{{ $labels.instance "'),
        ),
    ],
)
def test_promtool_refuses_a_broken_copy_of_the_rules(tmp_path: Path, what: str, bad: tuple[str, str]) -> None:
    # The positive control: the check above can fail, for each kind of mistake.
    text = RULES.read_text()
    assert bad[0] in text, what
    broken = tmp_path / "alerts.yml"
    broken.write_text(text.replace(bad[0], bad[1], 1))
    checked = promtool("check", "rules", str(broken))
    assert checked.returncode != 0, f"{what} passed: {checked.stdout}"
    assert "FAILED" in checked.stdout + checked.stderr


@needs_promtool
def test_the_prometheus_config_passes_promtool_check_config_with_its_rules() -> None:
    checked = promtool("check", "config", str(CONFIG_DIR / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "is valid prometheus config file syntax" in checked.stdout
    config = yaml.safe_load((CONFIG_DIR / "prometheus.yml").read_text())
    assert {job["job_name"] for job in config["scrape_configs"]} == {"bzzz-agent", "bzzz-monitor"}


def test_every_alert_says_how_bad_it_is_what_happened_and_what_to_do() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]  # type: ignore[index]
        assert rule["annotations"]["summary"] and len(rule["annotations"]["description"]) > 60, rule["alert"]  # type: ignore[index]
    # What the issue asks operators be told about.
    for expected in (
        "BzzzAgentDown",
        "BzzzWorkerDown",
        "BzzzWorkerRestartingOften",
        "BzzzAgentWithoutPeers",
        "BzzzGossipRefusedHigh",
        "BzzzMessagesDropped",
        "BzzzReplicationLagging",
        "BzzzTasksFailing",
        "BzzzClaimsLostOften",
        "BzzzBusBacklogGrowing",
    ):
        assert expected in names


def test_the_dashboard_and_the_console_template_are_rendered_from_one_definition() -> None:
    done = subprocess.run([sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_the_generator_notices_a_hand_edited_dashboard(tmp_path: Path) -> None:
    # The positive control of the check above, on a copy of the tree's two rendered files.
    copy = tmp_path / "repo"
    for relative in (
        "tools/observe/dashboards.py",
        "docker/grafana/dashboards/bzzz.json",
        "docker/prometheus/consoles/bzzz.html",
    ):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_text((REPO / relative).read_text())
    edited = copy / "docker/grafana/dashboards/bzzz.json"
    edited.write_text(edited.read_text().replace("Connected peers", "Peers", 1))
    done = subprocess.run(
        [sys.executable, str(copy / "tools/observe/dashboards.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "docker/grafana/dashboards/bzzz.json out of date" in done.stderr


def test_the_dashboard_is_ready_for_grafana_provisioning() -> None:
    dashboard = grafana.load(DASHBOARD)
    assert dashboard["uid"] == "bzzz-mesh" and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in grafana.panels(dashboard):
        # Every query goes to the data source the variable picks, so the file works as it is
        # in any Grafana (no import step to map a data source).
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"] and all(t["datasource"] == panel["datasource"] for t in panel["targets"])
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel["targets"]:
            # Every variable a query uses is one Grafana will fill in.
            grafana.interpolate(
                target["expr"], {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "instance": ".*"}
            )
    provisioning = REPO / "docker/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources/bzzz.yaml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["isDefault"] is True
    provider = yaml.safe_load((provisioning / "dashboards/bzzz.yaml").read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_the_dashboard_covers_every_series_operators_expect() -> None:
    queries = " ".join(t["expr"] for p in grafana.panels(grafana.load(DASHBOARD)) for t in p["targets"])
    for series in (
        "bzzz_agent_info",
        "bzzz_worker_up",
        "bzzz_worker_restarts_total",
        "bzzz_mesh_connected_peers",
        "bzzz_mesh_received_total",
        "bzzz_mesh_published_total",
        "bzzz_mesh_rejected_total",
        "bzzz_mesh_dropped_total",
        "bzzz_claims_total",
        "bzzz_tasks",
        "bzzz_executor_task_duration_seconds_bucket",
        "bzzz_bus_queue_depth",
        "bzzz_log_length",
        "bzzz_replication_lag_entries",
        "bzzz_monitor_agents",
        "bzzz_monitor_lag_entries",
    ):
        assert re.search(rf"\b{series}\b", queries), series


def test_the_console_template_shows_every_panel_of_the_dashboard() -> None:
    page = (CONFIG_DIR / "consoles/bzzz.html").read_text()
    dashboard = grafana.load(DASHBOARD)
    for panel in grafana.panels(dashboard):
        assert f"<h3>{panel['title']}</h3>" in page, panel["title"]
        for target in panel["targets"]:
            # The same query, with Grafana's variables as the page's parameters.
            metric = re.search(r"bzzz_\w+|up", target["expr"])
            assert metric and metric.group(0) in page
