"""Fixtures for the tests of what reads Hive's PostgreSQL: a fresh server each, empty or seeded."""

from collections.abc import Iterator

import pytest

from tests.hive.postgres import NOT_INSTALLED, Postgres, binaries, load_schema, postgres
from tests.hive.seed import seed


@pytest.fixture
def hive_postgres() -> Iterator[Postgres]:
    """A real PostgreSQL 15 of this test's own with an empty `hive` database."""
    if binaries() is None:
        pytest.skip(NOT_INSTALLED)
    with postgres() as server:
        yield server


@pytest.fixture
def hive_db(hive_postgres: Postgres) -> Postgres:
    """`hive_postgres` holding Hive's schema and the rows of tests/hive/seed.py."""
    load_schema(hive_postgres.url)
    with hive_postgres.connect() as conn:
        seed(conn)
    return hive_postgres
