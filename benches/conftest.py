"""Benchmarks: each Rust path beside its baseline, measured in the same run.

Machines are small and shared, so absolute figures wander; the ratios printed at
the end (measured seconds apart on the same machine) are what the targets are
about. Rates come from each benchmark's fastest round: noise from other tenants
only ever adds time, so the minimum is the steadiest estimate of the cost.
Correctness is checked before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benches.rates import CEILINGS, FIGURES, RATES, TARGETS
from tests.agents import Agent, agents_under
from tests.browser import Browser, artifacts_dir, chromium, missing


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """As the tests' own (tests/conftest.py): real agents under tmp_path, stopped at the end."""
    with agents_under(tmp_path) as start:
        yield start


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    """As the tests' own (tests/conftest.py): a headless Debian Chromium, screenshots kept."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium(artifacts_dir(request.node.nodeid, tmp_path)) as opened:
        yield opened


@pytest.fixture
def record_rate() -> Callable[[str, str, Any, int], None]:
    """Store ops/s of a finished pytest-benchmark run (`per_call` operations per call)."""

    def record(group: str, implementation: str, benchmark: Any, per_call: int = 1) -> None:
        RATES[group][implementation] = per_call / benchmark.stats.stats.min

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RATES and not CEILINGS and not FIGURES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("bzzz: rates and ratios (same run, same machine)")
    for label, (value, ceiling, unit) in CEILINGS.items():
        verdict = "met" if value <= ceiling else "MISSED"
        write(f"{label:<48} {value:>12,.3f} {unit}   target <= {ceiling:g} {unit}: {verdict}")
    for label, figure in FIGURES.items():
        write(f"{label:<48} {figure}")
    for group, rates in RATES.items():
        for implementation, rate in sorted(rates.items()):
            write(f"{group:<44} {implementation:<14} {rate:>14,.0f} ops/s")
    write("")
    for group, top, bottom, target, label in TARGETS:
        rates = RATES.get(group, {})
        if not rates:
            continue
        if top not in rates or (bottom is not None and bottom not in rates):
            write(f"{label:<48} not measured")
            continue
        if bottom is None:
            figure, verdict = rates[top], "met" if target is None or rates[top] >= target else "MISSED"
            write(f"{label:<48} {figure:>12,.0f}   target >= {target:,}: {verdict}")
            continue
        ratio = rates[top] / rates[bottom]
        verdict = "" if target is None else f"   target >= {target}x: {'met' if ratio >= target else 'MISSED'}"
        write(f"{label:<48} {ratio:>11.2f}x{verdict}")
