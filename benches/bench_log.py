"""The signed log: Rust core vs the pure-Python reference (PyNaCl + hashlib) vs JS hypercore."""

from __future__ import annotations

from pathlib import Path

import pytest

from benches.rates import RATES
from bzzz._core import KeyPair, MerkleLog
from tests.interop import js_hypercore
from tests.reference import merkle as ref

SEED = bytes(range(32))
ENTRY = b"x" * 64
BATCH = [bytes([i % 256]) * 64 for i in range(1000)]
SINGLE = "log: single signed append"
BATCHED = "log: batched append, 1000 per signature"


@pytest.fixture
def rust_log(tmp_path: Path):
    with MerkleLog.create(tmp_path / "rust", KeyPair.from_seed(SEED)) as log:
        yield log


@pytest.fixture
def python_log(tmp_path: Path):
    log = ref.ReferenceLog(SEED, tmp_path / "python")
    yield log
    log.close()


def test_both_implementations_agree_before_timing(rust_log: MerkleLog, python_log: ref.ReferenceLog) -> None:
    for _ in range(3):
        rust_log.append(ENTRY)
        python_log.append(ENTRY)
        rust_log.append_batch(BATCH)
        python_log.append_batch(BATCH)
    assert rust_log.signature() == python_log.signature
    assert rust_log.tree_hash() == python_log.tree_hash()


@pytest.mark.benchmark(group=SINGLE)
def test_single_append_rust(benchmark, rust_log: MerkleLog, record_rate) -> None:
    benchmark(rust_log.append, ENTRY)
    record_rate(SINGLE, "rust", benchmark)
    rust_log.verify()


@pytest.mark.benchmark(group=SINGLE)
def test_single_append_python(benchmark, python_log: ref.ReferenceLog, record_rate) -> None:
    benchmark(python_log.append, ENTRY)
    record_rate(SINGLE, "python", benchmark)


def _js_rate(benchmark, group: str, count: int, batch: int) -> None:
    """Node runs its own timed loop (start-up excluded) and reports entries/s; pytest-benchmark
    times whole runs, so the rate recorded is the best of what Node measured inside."""
    runs: list[dict] = []

    def run() -> None:
        runs.append(js_hypercore.bench_append(count, len(ENTRY), batch=batch, compat=False))

    benchmark.pedantic(run, rounds=3, iterations=1)
    rates = sorted(r["appends_per_sec"] * (batch if batch > 1 else 1) for r in runs)
    benchmark.extra_info["entries_per_sec_inside_node"] = rates
    RATES[group]["js-hypercore"] = rates[-1]


@pytest.mark.benchmark(group=SINGLE)
def test_single_append_js_hypercore(benchmark, record_rate) -> None:
    _js_rate(benchmark, SINGLE, count=5000, batch=1)


@pytest.mark.benchmark(group=BATCHED)
def test_batched_append_rust(benchmark, rust_log: MerkleLog, record_rate) -> None:
    benchmark(rust_log.append_batch, BATCH)
    record_rate(BATCHED, "rust", benchmark, per_call=len(BATCH))
    rust_log.verify()


@pytest.mark.benchmark(group=BATCHED)
def test_batched_append_python(benchmark, python_log: ref.ReferenceLog, record_rate) -> None:
    benchmark(python_log.append_batch, BATCH)
    record_rate(BATCHED, "python", benchmark, per_call=len(BATCH))


@pytest.mark.benchmark(group=BATCHED)
def test_batched_append_js_hypercore(benchmark, record_rate) -> None:
    _js_rate(benchmark, BATCHED, count=100, batch=len(BATCH))
