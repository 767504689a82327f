"""A real Prometheus for the tests: Debian's `prometheus` in a temp dir, with the repository's
docker/prometheus files (config, alert rules, console templates) and targets of the test's own.

`start_prometheus` copies docker/prometheus/ into the test's folder, so the config under test is
the one operators get; the test only writes its targets (file_sd) and shortens the intervals
(and, for alerts, the `for:` durations) to fit a test's minutes.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.agents import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "docker/prometheus"
DASHBOARD = REPO / "docker/grafana/dashboards/bzzz.json"
NOT_INSTALLED = "Debian's prometheus/promtool are not installed: run `make sysdeps`"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
# The console library the distribution's Prometheus ships (its "prom_console_head" knows where
# that build serves the graph scripts); docker/prometheus/console_libraries/bzzz.lib goes beside it.
DISTRIBUTION_LIBRARIES = Path("/usr/share/doc/prometheus/examples/console_libraries")
NO_PROM_LIB = (
    None
    if (DISTRIBUTION_LIBRARIES / "prom.lib").is_file()
    else f"no {DISTRIBUTION_LIBRARIES}/prom.lib (Debian's prometheus, `make sysdeps`; kept only where dpkg keeps docs)"
)


@dataclass
class Prometheus:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    scrape_interval_s: float
    started: float  # time.time() when it started: the dashboard's time range begins here

    def api(self, path: str, **params: Any) -> Any:
        reply = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = reply.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus refused {path} {params}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        result: list[dict[str, Any]] = self.api("query", **params)["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step_s: float) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query_range", query=expr, start=start, end=end, step=step_s)["result"]
        return result

    def targets_up(self, job: str) -> list[dict[str, Any]]:
        return [t for t in self.api("targets")["activeTargets"] if t["labels"]["job"] == job and t["health"] == "up"]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts


def finite(samples: list[dict[str, Any]]) -> bool:
    """Whether any series of a query's answer has a number (not NaN) in it."""
    for series in samples:
        values = series.get("values") or [series["value"]]
        if any(not math.isnan(float(v)) for _, v in values):
            return True
    return False


def write_targets(home: Path, name: str, addresses: list[str]) -> None:
    """The file_sd file prometheus.yml reads for a job (targets/agents.yml, targets/monitor.yml)."""
    path = home / "targets" / f"{name}.yml"
    tmp = path.with_suffix(".tmp")
    # Replaced at once: Prometheus watches the file and must never read half of it.
    tmp.write_text(yaml.safe_dump([{"targets": addresses}]))
    tmp.replace(path)


@contextmanager
def start_prometheus(home: Path, scrape_interval_s: float = 1.0, alert_for: str | None = None) -> Iterator[Prometheus]:
    """Prometheus on a free port of 127.0.0.1, its data under `home`, with the repository's
    config and rules (the intervals set to `scrape_interval_s`; every alert's `for:` set to
    `alert_for` if given) and its console templates."""
    assert PROMETHEUS is not None, NOT_INSTALLED
    shutil.copytree(CONFIG_DIR, home)
    for library in DISTRIBUTION_LIBRARIES.glob("*.lib"):
        shutil.copy(library, home / "console_libraries" / library.name)
    config = yaml.safe_load((home / "prometheus.yml").read_text())
    interval = f"{scrape_interval_s:g}s"
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    for job in config["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            sd["refresh_interval"] = interval
    (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    if alert_for is not None:
        rules = yaml.safe_load((home / "alerts.yml").read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule["for"] = alert_for
        (home / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    write_targets(home, "agents", [])
    write_targets(home, "monitor", [])
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    started = time.time()
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.console.templates={home / 'consoles'}",
            f"--web.console.libraries={home / 'console_libraries'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=home,
    )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", home, process, scrape_interval_s, started)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {(home / 'prometheus.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("prometheus did not become ready in 60 s")
            time.sleep(0.2)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
