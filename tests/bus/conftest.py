"""Fixtures for the bus tests: short run dirs, and worker-like peer processes."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.bus.peer_process import Peer


@pytest.fixture
def run_dir() -> Iterator[Path]:
    """A run dir with a short path: a Unix socket path must fit in 107 bytes, and
    pytest's own tmp_path (named after these long test names) often does not."""
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Peer]]:
    """Start a peer (`spawn("serve", run_dir, "log")`); every one is killed at teardown."""
    peers: list[Peer] = []

    def start(*args: str | Path) -> Peer:
        peer = Peer(*map(str, args))
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.kill()
