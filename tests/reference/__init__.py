"""Pure-Python reference implementations: a second opinion for tests, the baseline for benchmarks."""
