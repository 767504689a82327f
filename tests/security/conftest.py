"""The fixtures of the attacks (`tests.security.harness`): a checkout other uids can reach, a
forge seeded for them, and the agent's token in a file only it may read."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.forge.harness import start_forge, stop_forge
from tests.security.harness import SEED, TOKEN


@pytest.fixture(scope="session", autouse=True)
def checkout_searchable() -> Iterator[None]:
    """As root, let the other uids these tests run as reach the checkout (its code, its venv):
    a checkout made by root may sit in a directory only root can search (`mktemp -d`). Search
    permission only, on the checkout's own ancestors, and restored afterwards."""
    changed: list[tuple[Path, int]] = []
    if os.geteuid() == 0:
        checkout = Path(__file__).resolve().parents[2]
        for folder in (checkout, *checkout.parents):
            mode = stat.S_IMODE(folder.stat().st_mode)
            if not mode & 0o001:
                folder.chmod(mode | 0o001)
                changed.append((folder, mode))
    try:
        yield
    finally:
        for folder, mode in reversed(changed):
            folder.chmod(mode)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path
