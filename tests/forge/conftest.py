"""The forge the tests of tests/forge/ share (`tests.forge.harness`), each module's responses
checked against GitHub's description when it ends, and the git client of the tests of the
forge's repositories and of git over HTTP (`client_env`; `git` and `commit_on` in the harness)."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="module")
def client_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The git client's environment: its own HOME and identity, no system config, no prompts."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text("[user]\n\tname = Client Person\n\temail = client@example.com\n")
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
