#!/usr/bin/env python3
"""The Bzzz dashboard, defined once and rendered twice: as a provisioning-ready Grafana
dashboard (docker/grafana/dashboards/bzzz.json) and as a Prometheus console template
(docker/prometheus/consoles/bzzz.html), so that a host without Grafana shows the same panels.

    python3 tools/observe/dashboards.py           write both files
    python3 tools/observe/dashboards.py --check   exit 1 if either differs from this definition

The queries use the metric names of the issue-20 contract (section 2). Grafana's variables
(`$instance`, `$__rate_interval`) become the console's URL parameters `instance` and `rate`.
Standard library only: it runs with any python3.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRAFANA_JSON = ROOT / "docker/grafana/dashboards/bzzz.json"
CONSOLE_HTML = ROOT / "docker/prometheus/consoles/bzzz.html"

# The scrape jobs of docker/prometheus/prometheus.yml.
AGENT = 'job="bzzz-agent", instance=~"$instance"'
MONITOR = 'job="bzzz-monitor"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # or "stat" (one number, an instant query), "table" (labels, instant)
    unit: str = "short"
    width: int = 8


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def _t(expr: str, legend: str = "") -> tuple[Target, ...]:
    return (Target(expr, legend),)


ROWS: tuple[Row, ...] = (
    Row(
        "Agents",
        (
            Panel(
                "Agents up",
                "Agent /metrics endpoints Prometheus scraped successfully at the last scrape.",
                _t(f"sum(up{{{AGENT}}})"),
                kind="stat",
                width=4,
            ),
            Panel(
                "Agents and versions",
                "One row per agent: its node id and the Bzzz version it runs.",
                _t(f"bzzz_agent_info{{{AGENT}}}", "{{instance}} {{node_id}} {{version}}"),
                kind="table",
                width=8,
            ),
            Panel(
                "Workers up",
                "Each worker process of each agent: 1 while running, 0 while down or restarting.",
                _t(f"bzzz_worker_up{{{AGENT}}}", "{{instance}} {{worker}}"),
                width=12,
            ),
            Panel(
                "Restarts per worker",
                "Worker restarts by the supervisor (crashes, hangs, kills). A steady rise means a worker is failing.",
                _t(
                    f"sum by (instance, worker) (increase(bzzz_worker_restarts_total{{{AGENT}}}[{RATE}]))",
                    "{{instance}} {{worker}}",
                ),
                width=12,
            ),
            Panel(
                "Bus queue depth",
                "Entries waiting in each worker's durable outbox. Growing: a service it delivers to is not answering.",
                _t(f"sum by (instance, worker) (bzzz_bus_queue_depth{{{AGENT}}})", "{{instance}} {{worker}}"),
                width=12,
            ),
        ),
    ),
    Row(
        "Mesh",
        (
            Panel(
                "Connected peers",
                "Open libp2p connections of each agent. Zero: the agent is cut off from the mesh.",
                _t(f"bzzz_mesh_connected_peers{{{AGENT}}}", "{{instance}}"),
            ),
            Panel(
                "Live agents heard",
                "Agents in each agent's peer table that advertised their capabilities recently.",
                _t(f"bzzz_mesh_live_agents{{{AGENT}}}", "{{instance}}"),
            ),
            Panel(
                "Gossip in by type",
                "Messages the Rust core's gate admitted, per second, by message type.",
                _t(f"sum by (type) (rate(bzzz_mesh_received_total{{{AGENT}}}[{RATE}]))", "{{type}}"),
            ),
            Panel(
                "Gossip out by type",
                "Messages the agents signed and published (and relayed), per second, by type.",
                _t(f"sum by (type) (rate(bzzz_mesh_published_total{{{AGENT}}}[{RATE}]))", "{{type}}"),
            ),
            Panel(
                "Gossip refused by reason",
                "Inbound messages the gate refused, per second, by reason (signature, schema, size, rate, ...).",
                _t(f"sum by (reason) (rate(bzzz_mesh_rejected_total{{{AGENT}}}[{RATE}]))", "{{reason}}"),
            ),
            Panel(
                "Messages dropped",
                "Messages lost after the gate or on the way out, per second, by place (queues, rate limit, bus).",
                _t(f"sum by (where) (rate(bzzz_mesh_dropped_total{{{AGENT}}}[{RATE}]))", "{{where}}"),
            ),
            Panel(
                "Gossip duplicates",
                "Copies the router dropped as already seen: normal in a mesh, each message arrives from several peers.",
                _t(f"sum by (instance) (rate(bzzz_mesh_gossip_duplicates_total{{{AGENT}}}[{RATE}]))", "{{instance}}"),
                width=16,
            ),
        ),
    ),
    Row(
        "Work",
        (
            Panel(
                "Claims by outcome",
                "Claims won, lost (another agent was first), released and reaped (an expired lease taken back).",
                _t(f"sum by (outcome) (increase(bzzz_claims_total{{{AGENT}}}[{RATE}]))", "{{outcome}}"),
            ),
            Panel(
                "Tasks by state",
                "Tasks the agents hold now (claimed, discussing, executing) and have finished since they started.",
                _t(f"sum by (state) (bzzz_tasks{{{AGENT}}})", "{{state}}"),
            ),
            Panel(
                "Executor task duration",
                "How long tasks took from start to pull request or failure: median and 95th percentile.",
                (
                    Target(
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(bzzz_executor_task_duration_seconds_bucket{{{AGENT}}}[{RATE}])))",
                        "p50",
                    ),
                    Target(
                        "histogram_quantile(0.95, sum by (le) "
                        f"(rate(bzzz_executor_task_duration_seconds_bucket{{{AGENT}}}[{RATE}])))",
                        "p95",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Tasks finished by outcome",
                "Tasks the executors finished, by outcome: a pull request, or a failure.",
                _t(
                    f"sum by (outcome) (increase(bzzz_executor_task_duration_seconds_count{{{AGENT}}}[{RATE}]))",
                    "{{outcome}}",
                ),
                width=24,
            ),
        ),
    ),
    Row(
        "Logs and replication",
        (
            Panel(
                "Log length",
                "Entries in each agent's own signed log.",
                _t(f"bzzz_log_length{{{AGENT}}}", "{{instance}}"),
            ),
            Panel(
                "Log appends",
                "Entries appended to each agent's own signed log, per second.",
                _t(f"rate(bzzz_log_appended_entries_total{{{AGENT}}}[{RATE}])", "{{instance}}"),
            ),
            Panel(
                "Replication lag",
                "Per followed log: entries its writer advertises that this agent's copy does not hold yet.",
                _t(f"max by (instance, log_key) (bzzz_replication_lag_entries{{{AGENT}}})", "{{instance}} {{log_key}}"),
            ),
            Panel(
                "Replication entries",
                "Log entries served to peers and fetched from them (verified), per second.",
                (
                    Target(f"sum(rate(bzzz_replication_served_entries_total{{{AGENT}}}[{RATE}]))", "served"),
                    Target(f"sum(rate(bzzz_replication_fetched_entries_total{{{AGENT}}}[{RATE}]))", "fetched"),
                ),
                width=12,
            ),
            Panel(
                "Replication refused",
                "Replication answers refused, by the check that failed: a peer served what its key does not sign.",
                _t(f"sum by (what) (rate(bzzz_replication_refused_total{{{AGENT}}}[{RATE}]))", "{{what}}"),
                width=12,
            ),
        ),
    ),
    Row(
        "Monitor",
        (
            Panel(
                "Monitor up",
                "Whether Prometheus scraped the monitor (`bzzz monitor`) at the last scrape.",
                _t(f"up{{{MONITOR}}}"),
                kind="stat",
                width=4,
            ),
            Panel(
                "Agents seen by the monitor",
                "Agents the monitor shows, live or gone.",
                _t(f"sum by (state) (bzzz_monitor_agents{{{MONITOR}}})", "{{state}}"),
                width=10,
            ),
            Panel(
                "Logs followed by the monitor",
                "Agents' logs the monitor replicates and indexes.",
                _t(f"bzzz_monitor_followed_logs{{{MONITOR}}}", "followed"),
                width=10,
            ),
            Panel(
                "Monitor indexing",
                "Log entries the monitor indexed, per second.",
                _t(f"rate(bzzz_monitor_indexed_entries_total{{{MONITOR}}}[{RATE}])", "indexed"),
            ),
            Panel(
                "Monitor lag by agent",
                "Entries of each agent's log the monitor has not copied yet.",
                _t(f"max by (node_id) (bzzz_monitor_lag_entries{{{MONITOR}}})", "{{node_id}}"),
            ),
            Panel(
                "Live page clients and events",
                "Browsers following the monitor's live stream, and the events it sent them per second.",
                (
                    Target(f"sum(bzzz_monitor_sse_clients{{{MONITOR}}})", "clients"),
                    Target(f"sum(rate(bzzz_monitor_events_sent_total{{{MONITOR}}}[{RATE}]))", "events/s"),
                ),
            ),
        ),
    ),
)

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


def grafana() -> dict[str, object]:
    """The dashboard as Grafana's provisioning reads it (schema 39, Grafana 10/11)."""
    panels: list[dict[str, object]] = []
    next_id = 1
    y = 0
    for row in ROWS:
        panels.append(
            {
                "type": "row",
                "id": next_id,
                "title": row.title,
                "collapsed": False,
                "panels": [],
                "gridPos": _grid(0, y, 24, 1),
            }
        )
        next_id += 1
        y += 1
        x, line = 0, 0
        for panel in row.panels:
            height = 4 if panel.kind == "stat" else 8
            if x + panel.width > 24:
                x, y = 0, y + line
                line = 0
            panels.append(_grafana_panel(panel, next_id, _grid(x, y, panel.width, height)))
            next_id += 1
            x += panel.width
            line = max(line, height)
        y += line
    return {
        "uid": "bzzz-mesh",
        "title": "Bzzz mesh",
        "description": "Agents, workers, gossip, claims, tasks, logs and replication of a Bzzz mesh, and its monitor.",
        "tags": ["bzzz"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "DS_PROMETHEUS",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                },
                {
                    "name": "instance",
                    "label": "Agent",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "definition": 'label_values(up{job="bzzz-agent"}, instance)',
                    "query": {"query": 'label_values(up{job="bzzz-agent"}, instance)', "refId": "instances"},
                    "multi": True,
                    "includeAll": True,
                    # Every agent, also one whose target vanished from service discovery.
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "hide": 0,
                    "refresh": 2,
                    "sort": 1,
                    "regex": "",
                    "options": [],
                },
            ]
        },
        "panels": panels,
    }


def _grid(x: int, y: int, w: int, h: int) -> dict[str, int]:
    return {"x": x, "y": y, "w": w, "h": h}


def _grafana_panel(panel: Panel, panel_id: int, grid: dict[str, int]) -> dict[str, object]:
    instant = panel.kind in ("stat", "table")
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": DATASOURCE,
            "expr": t.expr,
            "legendFormat": t.legend or "__auto",
            "instant": instant,
            "range": not instant,
            **({"format": "table"} if panel.kind == "table" else {}),
        }
        for i, t in enumerate(panel.targets)
    ]
    out: dict[str, object] = {
        "type": panel.kind,
        "id": panel_id,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": grid,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "timeseries":
        out["options"] = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
    elif panel.kind == "stat":
        out["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    else:
        out["transformations"] = [
            {
                "id": "organize",
                "options": {"excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True}},
            }
        ]
    return out


# The console template. Prometheus renders it with Go's html/template, so values are escaped for
# the context they land in (HTML text, a JavaScript string); the library (bzzz.lib) is ours, not
# the Debian examples', so that it works wherever Prometheus 2.x serves /classic/static.
CONSOLE_HEAD = """{{/* Generated by tools/observe/dashboards.py from the same panels as the Grafana dashboard
   docker/grafana/dashboards/bzzz.json: edit that script, not this file.
   Parameters: instance (a regex of agent targets, default every one), rate (the rate window,
   default 1m, Grafana's $__rate_interval). */}}
{{ $instance := or .Params.instance ".*" }}{{ $rate := or .Params.rate "1m" }}
{{ template "bzzz_head" "Bzzz mesh" }}
<h1>Bzzz mesh</h1>
<p class="bzzz-params">agents matching <code>{{ $instance }}</code>, rates over <code>{{ $rate }}</code></p>
{{ template "prom_graph_timecontrol" . }}
"""

CONSOLE_TAIL = """{{ template "bzzz_tail" }}
"""


def _go_string(text: str) -> str:
    """A Go template string literal (the same escapes as JSON's for what the queries hold)."""
    return json.dumps(text)


def _console_expr(expr: str) -> str:
    """A template pipeline that builds the query with the page's parameters."""
    if "$instance" not in expr and RATE not in expr:
        return _go_string(expr)  # printf would append the unused arguments to it
    fmt = expr.replace("%", "%%").replace("$instance", "%[1]s").replace(RATE, "%[2]s")
    return f"printf {_go_string(fmt)} $instance $rate"


def _js_expr(expr: str) -> str:
    """The query as a JavaScript string whose parameters html/template fills in (JS-escaped)."""
    body = json.dumps(expr)[1:-1]
    return '"' + body.replace("$instance", "{{ $instance }}").replace(RATE, "{{ $rate }}") + '"'


def _legend(legend: str) -> str:
    # Grafana's {{label}} is the console graph's [[label]].
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", r"[[\1]]", legend)


def console() -> str:
    parts = [CONSOLE_HEAD]
    graph = 0
    for row in ROWS:
        parts.append(f'<h2 class="bzzz-row">{row.title}</h2>\n')
        for panel in row.panels:
            graph += 1
            slug = f"panel-{graph}"
            parts.append(f'<div class="bzzz-panel" id="{slug}">\n<h3>{panel.title}</h3>\n')
            parts.append(f'<p class="bzzz-description">{panel.description}</p>\n')
            parts.append('<table class="table table-sm bzzz-now">\n')
            for target in panel.targets:
                parts.append(
                    f'{{{{ range {_console_expr(target.expr)} | query | sortByLabel "instance" }}}}'
                    '<tr><td class="bzzz-labels">'
                    f"{_console_labels(target.legend)}"
                    '</td><td class="bzzz-value">{{ template "bzzz_value" .Value }}</td></tr>'
                    '{{ else }}<tr><td colspan="2" class="bzzz-nodata">no data</td></tr>{{ end }}\n'
                )
            parts.append("</table>\n")
            if panel.kind == "timeseries":
                exprs = ", ".join(_js_expr(t.expr) for t in panel.targets)
                names = ", ".join(json.dumps(_legend(t.legend) or panel.title) for t in panel.targets)
                parts.append(f'<div class="bzzz-graph" id="{slug}-graph"></div>\n<script>\n')
                parts.append(
                    "new PromConsole.Graph({\n"
                    f'  node: document.querySelector("#{slug}-graph"),\n'
                    f"  expr: [{exprs}],\n"
                    f"  name: [{names}],\n"
                    f"  yUnits: {json.dumps(' s' if panel.unit == 's' else '')},\n"
                    "  yAxisFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,\n"
                    "  yHoverFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,\n"
                    "  height: 160,\n"
                    "})\n</script>\n"
                )
            parts.append("</div>\n")
    parts.append(CONSOLE_TAIL)
    return "".join(parts)


def _console_labels(legend: str) -> str:
    labels = re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)
    if not labels:
        return legend or "value"
    return " ".join(f"{{{{ .Labels.{name} }}}}" for name in labels)


def render() -> dict[Path, str]:
    return {GRAFANA_JSON: json.dumps(grafana(), indent=2) + "\n", CONSOLE_HTML: console()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a rendered file differs from its definition")
    args = parser.parse_args()
    stale = []
    for path, text in render().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"dashboards: {names} out of date: run python3 tools/observe/dashboards.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
