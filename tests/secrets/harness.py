"""What the secrets tests share: a forge whose tokens can be rotated, an agent that takes its
issues with the github worker (and the probe executor), and a look through its data dir."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bzzz.forge.app import DB_FILE
from bzzz.forge.store import Store
from tests.agents import Agent, wait_until
from tests.forge.harness import Forge

OLD = "agent-1-token-before-rotation-0001"
NEW = "agent-1-token-after-rotation-0002"

SEED = f"""
users:
  - {{login: alice, site_admin: true, tokens: [alice-token]}}
  - {{login: agent-1, tokens: [{OLD}]}}
repos:
  - owner: alice
    name: tasks
    collaborators: {{agent-1: push}}
    labels: [{{name: bzzz-task}}]
    issues:
      - {{title: "Add --verbose", labels: [bzzz-task]}}
"""


def rotate_on_forge(forge: Forge, old: str, new: str) -> None:
    """The forge (GitHub) accepts `new` for agent-1 and no longer `old`, as after a rotation."""
    store = Store(forge.data / "forge" / DB_FILE)
    try:
        store.add_token("agent-1", new)
        with store.transaction() as db:
            db.execute("DELETE FROM tokens WHERE token = ?", (old,))
    finally:
        store.close()
    assert forge.call("GET", "/user", token=old).status_code == 401  # the old token is really dead
    assert forge.call("GET", "/user", token=new).json()["login"] == "agent-1"


def open_issue(forge: Forge, title: str) -> int:
    answer = forge.call(
        "POST", "/repos/alice/tasks/issues", token="alice-token", json={"title": title, "labels": ["bzzz-task"]}
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["number"])


def done(forge: Forge, number: int) -> bool:
    comments = forge.call("GET", f"/repos/alice/tasks/issues/{number}/comments", token="alice-token").json()
    return any(c["body"].startswith("🐝 Claimed by `agent-1`: done") for c in comments)


def wait_done(forge: Forge, number: int, timeout: float = 60) -> None:
    wait_until(lambda: done(forge, number), timeout, f"issue {number} done by agent-1")


def assignees(forge: Forge, number: int) -> list[str]:
    issue = forge.call("GET", f"/repos/alice/tasks/issues/{number}", token="alice-token").json()
    return [a["login"] for a in issue["assignees"]]


def github_agent(
    start_agent: Callable[..., Agent], forge: Forge, extra: str, env: dict[str, str] | None = None
) -> Agent:
    """An agent taking alice/tasks' issues as agent-1, its token from `extra`'s [github_token]."""
    github: dict[str, Any] = {
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
    }
    if env:
        github["env"] = env
    return start_agent(
        {
            "github": github,
            "executor": {"module": "bzzz.testing.probe", "args": ["--executor", "0.2"]},
            "log": {"module": "bzzz.workers.log"},
        },
        extra=extra,
    )


def files_holding(root: Path, *secrets: str) -> list[Path]:
    """Every file under `root` whose bytes hold one of `secrets`."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink() and any(s.encode() in path.read_bytes() for s in secrets)
    )


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def log_lines(agent: Agent, worker: str, text: str) -> list[str]:
    path = agent.data_dir / "logs" / f"{worker}.log"
    return [line for line in path.read_text().splitlines() if text in line] if path.exists() else []


def settle(seconds: float) -> None:
    """Let the agent run on (e.g. poll several times) before looking for what must NOT happen."""
    time.sleep(seconds)
