from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.secrets.vault_dev import BINARY, VaultDev


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[VaultDev]:
    """A running `vault server -dev` of this test's own (stopped at the end)."""
    if not BINARY.is_file():
        pytest.skip("vault is not built: `make test-vault` builds it and runs these tests")
    server = VaultDev(tmp_path / "vault")
    server.start()
    try:
        yield server
    finally:
        server.stop()
