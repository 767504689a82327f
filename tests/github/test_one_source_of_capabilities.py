"""One source of capabilities (issue 17): an agent claims with what its mesh worker advertises,
never with a list of its own, so peers and GitHub see the same agent."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from bzzz.capabilities import advertised
from tests.issues import comments, github_and_executor, open_issue, token_for, wait_for_comment

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def test_what_a_past_run_advertised_counts_for_nothing(tmp_path: Path) -> None:
    advertised.write(tmp_path, {"models": ["qwen2.5-coder:7b"], "tools": ["sh", "git"], "cpu_count": 4})
    assert advertised.read(tmp_path) == (("qwen2.5-coder:7b",), ("git", "sh"))
    assert advertised.read(tmp_path, since=time.time() + 60) is None  # written before this run started
    os.remove(advertised.path(tmp_path))
    assert advertised.read(tmp_path) is None


def test_the_agent_claims_with_what_its_mesh_advertises_not_with_its_flags(
    start_agent, forge: Any, tmp_path: Path
) -> None:
    config = github_and_executor(forge.url, "agent-1", token_for(tmp_path, "agent-1"), tools=["pytest"])
    config["mesh"] = {
        "module": "bzzz.workers.mesh",
        "heartbeat_timeout_s": 30.0,
        "settings": {
            "listen": ["/ip4/127.0.0.1/tcp/0"],
            "capabilities_interval_s": 1,
            "discovery": {"mdns": False, "dht": False},
            "capabilities": {"ollama_endpoints": [], "tools": ["sh"]},
        },
    }
    agent = start_agent(config, name="agent-1")
    needs_pytest = open_issue(
        forge, "Run the tests", "```bzzz-task\nneeds: {tools: [pytest]}\nrun: [\"sh -c 'echo ok > OK.md'\"]\n```\n"
    )
    needs_sh = open_issue(
        forge, "Say ok", "```bzzz-task\nneeds: {tools: [sh]}\nrun: [\"sh -c 'echo ok > OK.md'\"]\n```\n"
    )
    wait_for_comment(forge, needs_sh, "✅ Done", timeout=120)  # the positive control: sh is advertised
    log = (agent.data_dir / "logs" / "github.log").read_text()
    assert "claims with what its mesh worker advertises" in log  # tools = ["pytest"] was not used
    assert "needs tool 'pytest'" in log
    assert comments(forge, needs_pytest) == []
    run_dir = agent.data_dir / "run"
    assert advertised.read(run_dir) == ((), ("sh",))
