"""Fixtures of the log tests: the log worker's side of an agent, and a short run dir."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.log.harness import Side


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    s = Side(tmp_path)
    yield s
    s.close()


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bzzz-", dir="/tmp"))  # socket paths must be short
    yield path
    shutil.rmtree(path, ignore_errors=True)
