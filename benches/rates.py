"""Rates measured by the benchmarks, and the targets they are held to."""

from __future__ import annotations

from collections import defaultdict

# group -> implementation -> operations (entries, envelopes) per second
RATES: dict[str, dict[str, float]] = defaultdict(dict)

# (group, numerator, denominator, target ratio, what the figure means)
TARGETS = [
    ("log: single signed append", "rust", "js-hypercore", 2.0, "single append vs JS hypercore 11"),
    ("log: single signed append", "rust", "python", None, "single append vs PyNaCl + hashlib"),
    ("log: batched append, 1000 per signature", "rust", None, 1_000_000, "batched entries/s (target is absolute)"),
    ("log: batched append, 1000 per signature", "rust", "js-hypercore", None, "batched vs JS hypercore 11"),
    ("log: batched append, 1000 per signature", "rust", "python", None, "batched vs PyNaCl + hashlib"),
    ("envelope: verify + validate + dedup", "rust", "python", 3.0, "envelope, one by one, vs PyNaCl-based Python"),
    ("envelope: verify + validate + dedup", "rust-batch", "python", 3.0, "envelope, batches of 100, vs PyNaCl Python"),
    ("envelope: gate with and without safeguards", "rust-safeguards", "rust", None, "gate with safeguards vs without"),
    ("bus: envelopes through the proxy", "bus", "raw-push-pull", 0.30, "bus throughput vs raw pyzmq PUSH/PULL"),
]

# name -> (measured value, ceiling, unit): figures that must stay *below* a target
CEILINGS: dict[str, tuple[float, float, str]] = {}

# name -> a figure with no target, printed as it is (rates with context, comparisons)
FIGURES: dict[str, str] = {}
