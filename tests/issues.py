"""Issues on a forge, and agents that work them: the alice/tasks repository (`SEED`), filing an
issue and reading its comments, and the github + executor workers of an agent working it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: mallory, tokens: [mallory-token]}
  - {login: agent-1, tokens: [agent-1-secret-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    files: {README.md: "# Tasks\\n"}
    labels: [{name: bzzz-task}]
"""


def github_and_executor(forge_url: str, login: str, token_file: Path, **github: Any) -> dict[str, dict[str, Any]]:
    """An agent `login` working alice/tasks: its github worker (with `github` settings) and executor."""
    return _workers(
        forge_url, login, token_file, github={"retry_backoff_s": 1, **github}, executor={"time_limit_s": 60}
    )


def agent_workers(forge_url: str, token_file: Path, **executor: Any) -> dict[str, dict[str, Any]]:
    """agent-1 working alice/tasks: its github worker and its executor (with `executor` settings)."""
    return _workers(forge_url, "agent-1", token_file, github={}, executor={"time_limit_s": 30, **executor})


def _workers(
    forge_url: str, login: str, token_file: Path, *, github: dict[str, Any], executor: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    env = {"GITHUB_TOKEN_FILE": str(token_file)}
    return {
        "log": {"module": "bzzz.workers.log"},
        "github": {
            "module": "bzzz.workers.github",
            "heartbeat_timeout_s": 30.0,
            "env": env,
            "settings": {
                "base_url": forge_url,
                "login": login,
                "repos": ["alice/tasks"],
                "poll_interval_s": 0.3,
                "settle_s": 0.05,
                "pace_s": 0,
                "task_timeout_s": 120,
                **github,
            },
        },
        "executor": {
            "module": "bzzz.workers.executor",
            "heartbeat_timeout_s": 30.0,
            "env": env,
            "settings": {
                "base_url": forge_url,
                "login": login,
                "allow": ["sh"],
                "trust_authors": ["alice"],
                "discuss": "off",
                **executor,
            },
        },
    }


def token_for(tmp_path: Path, login: str) -> Path:
    path = tmp_path / f"{login}.token"
    path.write_text(f"{login}-token\n")
    path.chmod(0o600)
    return path


def comments(forge: Any, number: int) -> list[str]:
    raw = forge.call("GET", f"/repos/alice/tasks/issues/{number}/comments", token="alice-token").json()
    return [c["body"] for c in raw]


def wait_for_comment(forge: Any, number: int, needle: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    bodies: list[str] = []
    while time.monotonic() < deadline:
        bodies = comments(forge, number)
        if any(needle in b for b in bodies):
            return bodies
        time.sleep(0.3)
    raise AssertionError(f"no comment with {needle!r} on #{number}: {bodies}")


def open_issue(forge: Any, title: str, body: str, token: str = "alice-token") -> int:
    reply = forge.call(
        "POST", "/repos/alice/tasks/issues", token=token, json={"title": title, "body": body, "labels": ["bzzz-task"]}
    )
    return int(reply.json()["number"])
