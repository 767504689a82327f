"""Issue → claim → workspace → command in the sandbox → pull request, against the forge, with a
real agent (supervisor, github, executor and log workers); and the tasks it must not do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz._core import MerkleLog
from tests.agents import toml_config
from tests.executor.fake_ollama import fake_ollama
from tests.forge.harness import start_forge, stop_forge
from tests.issues import SEED, agent_workers, open_issue, wait_for_comment

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

TASK = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo hello from the sandbox > GREETING.md'"]
```
"""
# Everything it finds goes to stderr, which the failure comment quotes.
SNEAKY = """Tidy up.

```bzzz-task
run: ["sh -c 'python3 -c \\"import urllib.request as u; u.urlopen(\\\\\\"FORGE\\\\\\")\\"; cat TOKEN_FILE >&2; echo token=[$GITHUB_TOKEN] >&2; exit 1'"]
```
"""


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("agent-1-secret-token\n")
    return path


def test_an_issue_becomes_a_pull_request_made_in_the_sandbox_and_linked_to_the_log(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    agent = start_agent(agent_workers(forge.url, token_file))
    number = open_issue(forge, "Add a greeting", TASK)
    bodies = wait_for_comment(forge, number, "Opened ")
    pulls = forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json()
    assert len(pulls) == 1
    pull = pulls[0]
    assert pull["head"]["ref"] == f"bzzz/{number}-agent-1" and pull["base"]["ref"] == "main"
    assert pull["html_url"] in "\n".join(bodies)
    assert f"Closes #{number}" in pull["body"] and "in a sandbox (bubblewrap; uid " in pull["body"]

    # The branch holds the command's work, committed as the agent.
    checkout = tmp_path / "checkout"
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", pull["head"]["ref"], f"{forge.url}/alice/tasks.git", str(checkout)],
        check=True,
    )
    assert (checkout / "GREETING.md").read_text() == "hello from the sandbox\n"
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an"], cwd=checkout, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert author == "agent-1"
    assert "agent-1-secret-token" not in (checkout / ".git" / "config").read_text()

    # The PR names the log by key and the task's entries in it, and they are there.
    agent.call("shutdown")
    assert agent.process.wait(30) == 0
    with MerkleLog.open(agent.data_dir / "log" / "hypercore") as signed:
        signed.verify()
        assert signed.key.hex() in pull["body"]
        entries = {i: json.loads(signed.get(i)) for i in range(signed.length)}
    started = next(i for i, e in entries.items() if e["type"] == "task_started")
    executed = next(i for i, e in entries.items() if e["type"] == "task_executed")
    assert f"entries {started} to {executed}" in pull["body"]


def test_a_command_that_reaches_for_the_token_or_the_network_gets_neither(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    start_agent(agent_workers(forge.url, token_file))
    number = open_issue(forge, "Tidy", SNEAKY.replace("FORGE", forge.url).replace("TOKEN_FILE", str(token_file)))
    bodies = wait_for_comment(forge, number, "The task failed")
    failure = next(b for b in bodies if "The task failed" in b)
    # Not even redacted: the reporter would have replaced a leaked token with [REDACTED].
    assert "agent-1-secret-token" not in failure and "REDACTED" not in failure
    assert "token=[]" in failure
    assert "Network is unreachable" in failure or "Connection refused" in failure
    assert forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json() == []


def test_an_untrusted_authors_issue_is_not_executed(start_agent, forge: Any, token_file: Path) -> None:
    start_agent(agent_workers(forge.url, token_file))
    number = open_issue(forge, "Add a greeting", TASK, token="mallory-token")
    # GitHub drops labels from an author without push access; a maintainer triaging the
    # issue adds the task label, which makes it work for the agents but not trusted code.
    forge.call(
        "POST", f"/repos/alice/tasks/issues/{number}/labels", token="alice-token", json={"labels": ["bzzz-task"]}
    )
    bodies = wait_for_comment(forge, number, "Not executed")
    assert any("@mallory is not a trusted author" in b for b in bodies)
    assert forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json() == []


def test_the_worker_explains_its_settings_and_refuses_to_trust_everyone(tmp_path: Path) -> None:
    def show(settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        config = tmp_path / "bzzz.toml"
        executor = {"module": "bzzz.workers.executor", "settings": settings}
        config.write_text(toml_config(tmp_path, {"executor": executor}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
        return subprocess.run(
            [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
        )

    shown = show({"login": "a", "allow": ["sh"], "trust_authors": ["alice"]})
    assert shown.returncode == 0 and "allow_unsandboxed" in shown.stdout and "trust_labels" in shown.stdout
    refused = show({"login": "a", "allow": ["sh"]})
    assert refused.returncode == 2 and "issues from anyone are never executed" in refused.stderr


MODEL_TASK = """Add a greeting file that says hello.

```bzzz-task
check: ["grep -q hello GREETING.md"]
```
"""


def test_a_task_without_commands_is_done_by_the_model_and_checked(
    start_agent,
    forge: Any,
    token_file: Path,
) -> None:
    answers = [
        "I think the greeting should say goodbye.\n<<<FILE GREETING.md>>>\ngoodbye\n<<<END>>>\n",
        "<<<FILE GREETING.md>>>\nhello\n<<<END>>>\n",
    ]
    with fake_ollama(["gemma3:270m"], answers) as model:
        start_agent(agent_workers(forge.url, token_file, ollama_endpoints=[model.url], allow=["sh", "grep"]))
        number = open_issue(forge, "Add a greeting", MODEL_TASK)
        bodies = wait_for_comment(forge, number, "Opened ")
    assert any("a change proposed by `gemma3:270m`" in b for b in bodies)
    pull = forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json()[0]
    assert "round 2 of at most 3" in pull["body"] and "check `grep -q hello GREETING.md` passed" in pull["body"]
    assert len(model.requests) == 2 and "exited with status 1" in model.requests[1]["messages"][-1]["content"]
