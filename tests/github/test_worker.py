"""The github worker under the supervisor, end to end: a forge, an agent process, the bus.

The agent runs the github worker and a probe standing in for the executor (issue 7): an issue
opened on the forge is claimed, handed to the executor over the bus, and its outcome posted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bzzz._core import MerkleLog
from tests.agents import toml_config
from tests.forge.harness import start_forge, stop_forge

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-secret-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    labels: [{name: bzzz-task}]
    issues:
      - {title: "Add --verbose", labels: [bzzz-task]}
"""


def test_an_agent_takes_an_issue_has_it_executed_and_reports(start_agent, tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        token_file = tmp_path / "token"
        token_file.write_text("agent-1-secret-token\n")
        agent = start_agent(
            {
                "github": {
                    "module": "bzzz.workers.github",
                    "heartbeat_timeout_s": 30.0,
                    "settings": {
                        "base_url": forge.url,
                        "login": "agent-1",
                        "repos": ["alice/tasks"],
                        "poll_interval_s": 0.3,
                        "settle_s": 0.05,
                        "pace_s": 0,
                    },
                    "env": {"GITHUB_TOKEN_FILE": str(token_file)},
                },
                "executor": {"module": "bzzz.testing.probe", "args": ["--executor", "0.2"]},
                "log": {"module": "bzzz.workers.log"},
            }
        )
        deadline = time.monotonic() + 30
        bodies: list[str] = []
        while time.monotonic() < deadline:
            raw = forge.call("GET", "/repos/alice/tasks/issues/1/comments", token="alice-token").json()
            bodies = [c["body"] for c in raw]
            if any("Done" in b for b in bodies):
                break
            time.sleep(0.2)
        assert any("the probe executor did 'Add --verbose'" in b for b in bodies), bodies
        assert any(b.startswith("🐝 Claimed by `agent-1`: done") for b in bodies)
        time.sleep(1.0)  # the journal entries reach the log service from the github worker's outbox
        agent.call("shutdown")
        assert agent.process.wait(20) == 0
        with MerkleLog.open(agent.data_dir / "log" / "hypercore") as signed:
            signed.verify()
            entries = [json.loads(signed.get(i)) for i in range(signed.length)]
        decided = [(e["type"], e.get("issue")) for e in entries if e["type"] in ("claim_won", "task_finished")]
        assert decided == [("claim_won", 1), ("task_finished", 1)]
        logs = (agent.data_dir / "logs" / "github.log").read_text()
        assert "taking work from GitHub" in logs
        assert all("agent-1-secret-token" not in text for text in [logs, *bodies])
    finally:
        stop_forge(forge)


def test_the_worker_explains_its_settings(tmp_path: Path) -> None:
    settings = {"login": "agent-1", "repos": ["alice/tasks"]}
    config = tmp_path / "bzzz.toml"
    config.write_text(toml_config(tmp_path, {"github": {"module": "bzzz.workers.github", "settings": settings}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BZZZ_", "GITHUB_TOKEN"))}
    shown = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert shown.returncode == 0 and "workers.github.settings.repos" in shown.stdout
    # The token is not a setting: without one, the worker says where it comes from.
    helped = subprocess.run(
        [sys.executable, "-m", "bzzz.workers.github"],
        capture_output=True,
        text=True,
        env={
            **env,
            "BZZZ_WORKER": "github",
            "BZZZ_RUN_DIR": str(tmp_path),
            "BZZZ_DATA_DIR": str(tmp_path),
            "BZZZ_WORKER_SETTINGS": json.dumps(settings),
        },
        timeout=30,
    )
    assert helped.returncode == 2 and "GITHUB_TOKEN_FILE" in helped.stderr
