"""When each alert of docker/prometheus/alerts.yml fires, and for whom: `promtool test rules` runs
the cases of tests/ops/alert_cases.yml (synthetic series, a firing case and a quiet neighbour
for every alert) against the rules (their annotations left out: those are checked by promtool
check rules and by the live test, where an alert fires for a fault the test causes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.prometheus import CONFIG_DIR, NOT_INSTALLED, PROMTOOL

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason=NOT_INSTALLED)
CASES = Path(__file__).with_name("alert_cases.yml")


def run_cases(tmp_path: Path, rules_text: str) -> subprocess.CompletedProcess[str]:
    rules = yaml.safe_load(rules_text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(CASES, tmp_path / CASES.name)
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "test", "rules", CASES.name], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_every_alert_fires_when_it_should_and_only_for_the_series_at_fault(tmp_path: Path) -> None:
    done = run_cases(tmp_path, (CONFIG_DIR / "alerts.yml").read_text())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_has_a_case_where_it_fires() -> None:
    rules = yaml.safe_load((CONFIG_DIR / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load(CASES.read_text())["tests"]
    firing = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]}
    assert alerts == firing


@pytest.mark.parametrize(
    ("what", "rule", "mutant"),
    [
        (
            "a threshold too high",
            "increase(bzzz_worker_restarts_total[15m]) > 2",
            "increase(bzzz_worker_restarts_total[15m]) > 20",
        ),
        ("a misspelt metric", "bzzz_mesh_connected_peers == 0", "bzzz_mesh_conected_peers == 0"),
        ("duplicates counted as refusals", 'reason!="duplicate"', 'reason!="none"'),
    ],
)
def test_the_cases_catch_a_rule_that_is_wrong(tmp_path: Path, what: str, rule: str, mutant: str) -> None:
    # The positive control: a rule changed in a way that would page people wrongly (or never)
    # fails the cases above.
    text = (CONFIG_DIR / "alerts.yml").read_text()
    assert rule in text, what
    done = run_cases(tmp_path, text.replace(rule, mutant))
    assert done.returncode != 0, f"{what} passed the cases"
    assert "FAILED" in done.stdout + done.stderr
