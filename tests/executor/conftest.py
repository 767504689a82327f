"""Fixtures of the executor's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.executor.sandbox import Sandbox, clean_stale


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A real sandbox with an empty workspace (`sandbox.files`) and nothing else."""
    # Not under pytest's tmp_path: as root that is mode 0700, and bubblewrap resolves the paths
    # it binds as the (unprivileged) sandbox uid.
    parent = Path(tempfile.mkdtemp(prefix="bzzz-executor-test-", dir="/var/tmp"))
    parent.chmod(0o711)
    try:
        with Sandbox.open(parent) as opened:
            yield opened
    finally:
        clean_stale(parent)
        shutil.rmtree(parent, ignore_errors=True)
