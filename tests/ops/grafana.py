"""What Grafana does with a dashboard's queries, for the tests (no Grafana runs here): its panels,
its template variables filled in the way Grafana fills them, and each query run against a real
Prometheus the way a panel runs it (a range query for a graph, an instant one for a stat or a
table)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.ops.prometheus import Prometheus, finite

# Grafana's interval rounding (public/app/core/utils/kbn / @grafana/data rangeutil.roundInterval):
# a computed interval becomes the first of these at least as large as half-way to it.
_ROUNDED = [
    (1.5, 1),
    (3.5, 2),
    (7.5, 5),
    (12.5, 10),
    (17.5, 15),
    (25, 20),
    (45, 30),
    (90, 60),
    (210, 120),
    (450, 300),
    (750, 600),
    (1050, 900),
    (1500, 1200),
    (2700, 1800),
    (5400, 3600),
]


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel that queries, rows' nested panels (a collapsed row keeps them) included."""
    out: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def round_interval(seconds: float) -> int:
    for limit, value in _ROUNDED:
        if seconds < limit:
            return value
    return 3600 * round(seconds / 3600)


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the intervals Grafana derives from it for a panel."""

    start: float
    end: float
    scrape_interval_s: float  # the data source's "scrape interval" (jsonData.timeInterval)
    max_data_points: int = 800  # about a panel's width in pixels, Grafana's default

    @property
    def interval_s(self) -> int:
        # $__interval: the range over the points a panel draws, never below the scrape interval.
        return max(round_interval((self.end - self.start) / self.max_data_points), int(self.scrape_interval_s))

    @property
    def rate_interval_s(self) -> int:
        # $__rate_interval: max($__interval + scrape interval, 4 x scrape interval), so that a
        # rate() window always holds at least four samples.
        return int(max(self.interval_s + self.scrape_interval_s, 4 * self.scrape_interval_s))

    def variables(self, chosen: dict[str, str]) -> dict[str, str]:
        return {
            "__rate_interval": f"{self.rate_interval_s}s",
            "__interval": f"{self.interval_s}s",
            "__range": f"{int(self.end - self.start)}s",
            **chosen,
        }


def all_values(dashboard: dict[str, Any]) -> dict[str, str]:
    """Each query variable set to "All", as the dashboard opens: its allValue (a regex)."""
    chosen: dict[str, str] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable.get("includeAll") and variable.get("allValue"), variable["name"]
            chosen[variable["name"]] = variable["allValue"]
    return chosen


def chosen_value(value: str) -> str:
    """One value picked in a multi-value variable, as Grafana's Prometheus data source puts it in a
    query (prometheusSpecialRegexEscape): regex specials escaped, with the backslash doubled for
    the PromQL string."""
    return re.sub(r"[\\^$*+?.()|\[\]{}]", lambda m: "\\\\" + m.group(0), value)


def interpolate(expr: str, variables: dict[str, str]) -> str:
    """`$name`, `${name}` and `[[name]]` replaced, as Grafana does; an unknown one is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in variables:
            raise KeyError(f"the query uses ${name}, which the dashboard does not define")
        return variables[name]

    return re.sub(r"\$\{(\w+)\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)


def run(prometheus: Prometheus, target: dict[str, Any], window: TimeRange, chosen: dict[str, str]) -> list[Any]:
    """A target's answer as its panel gets it: an instant query at the range's end for a stat or a
    table, a range query stepped by $__interval for a graph."""
    expr = interpolate(target["expr"], window.variables(chosen))
    if target.get("instant"):
        return prometheus.query(expr, at=window.end)
    return prometheus.query_range(expr, window.start, window.end, window.interval_s)


def problems(prometheus: Prometheus, panel: dict[str, Any], window: TimeRange, chosen: dict[str, str]) -> list[str]:
    """What is wrong with a panel's data: each target that Prometheus refuses or answers with no
    number over the dashboard's time range (empty list: every target has data)."""
    found = []
    for target in panel["targets"]:
        expr = interpolate(target["expr"], window.variables(chosen))
        try:
            result = run(prometheus, target, window, chosen)
        except AssertionError as refused:
            found.append(f"{panel['title']} [{target['refId']}] {expr}: {refused}")
            continue
        if not finite(result):
            found.append(f"{panel['title']} [{target['refId']}] {expr}: no data")
    return found
