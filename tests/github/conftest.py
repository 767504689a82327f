"""The forge of the tests where several real agents share one repository (three agents, alice's
`tasks`). A module that needs another forge defines its own `forge`, which wins over this one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.forge.harness import Forge, start_forge, stop_forge

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
  - {login: agent-2, tokens: [agent-2-token]}
  - {login: agent-3, tokens: [agent-3-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push, agent-2: push, agent-3: push}
    files: {README.md: "# Tasks\\n"}
    labels: [{name: bzzz-task}]
"""


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Forge]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)
