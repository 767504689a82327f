import pytest
from hypothesis import HealthCheck, settings

# Property tests touch the disk; the machines are small and shared, so no deadlines.
settings.register_profile("bzzz", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("bzzz")


@pytest.fixture
def seed() -> bytes:
    return bytes(range(32))
