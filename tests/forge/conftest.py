"""The forge the tests of tests/forge/ share (`tests.forge.harness`), each module's responses
checked against GitHub's description when it ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.forge.harness import SEED, Forge, check_contract, start_forge, stop_forge


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = start_forge(tmp_path_factory.mktemp("forge"))
    yield running
    stop_forge(running)
    check_contract(running)


@pytest.fixture
def forge_factory(tmp_path: Path) -> Iterator[Callable[..., Forge]]:
    started: list[Forge] = []

    def make(*args: str, name: str = "forge", seed: str = SEED) -> Forge:
        f = start_forge(tmp_path / name, *args, seed=seed)
        started.append(f)
        return f

    yield make
    for f in started:
        if f.process.poll() is None:
            stop_forge(f)
    for f in started:
        check_contract(f)
