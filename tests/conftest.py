"""Fixtures every test folder may use, by name (no imports): keys' seed, real agents, a real browser."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.agents import Agent, agents_under
from tests.browser import Browser, artifacts_dir, chromium, missing
from tests.ollama import MODELS, NOT_BUILT, Server, binary, ensure_tiny, serve

# Property tests touch the disk; the machines are small and shared, so no deadlines.
settings.register_profile("bzzz", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("bzzz")


@pytest.fixture
def seed() -> bytes:
    return bytes(range(32))


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """`start_agent(workers, ...)`: a real `bzzz agent run` under tmp_path (`tests.agents`),
    stopped at the end of the test."""
    with agents_under(tmp_path) as start:
        yield start


@pytest.fixture(scope="session")
def real_ollama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real `ollama serve` (`tests.ollama`) with the models `make ollama` imported, the tiny
    one at least; skipped where no Ollama is built."""
    ollama = binary()
    if ollama is None:
        pytest.skip(NOT_BUILT)
    with serve(ollama, MODELS, tmp_path_factory.mktemp("ollama-home")) as server:
        ensure_tiny(server, ollama)
        yield server


@pytest.fixture
def fresh_ollama(tmp_path: Path) -> Iterator[Server]:
    """A real `ollama serve` of this test's own, with the tiny model only (its answers are
    known to be nonsense) in a models dir of its own: a test may crash it."""
    ollama = binary()
    if ollama is None:
        pytest.skip(NOT_BUILT)
    with serve(ollama, tmp_path / "ollama-models", tmp_path / "ollama-home") as server:
        ensure_tiny(server, ollama)
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Each phase's report on its item, so that a fixture knows whether its test failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


def failed(item: pytest.Item) -> bool:
    return any(r.failed for r in item.stash.get(REPORTS, {}).values())


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Browser]:
    """A headless Debian Chromium (`tests.browser`); screenshots go to $BZZZ_TEST_ARTIFACTS/<test>
    or tmp_path/artifacts, and a failed test leaves its last page there too."""
    reason = missing()
    if reason:
        pytest.skip(reason)
    with chromium(artifacts_dir(request.node.nodeid, tmp_path)) as opened:
        yield opened
        if failed(request.node):
            opened.screenshot("failed")
            opened.keep_page("failed")
