"""docker/compose.yaml on one host with podman-compose: the forge and three agents come up (the
shipped files, only on a free forge port and with the tokens in a temporary folder), the
agents find each other over the mesh, and an issue filed on the compose forge becomes a pull
request. Then `down` removes the containers and their volumes."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.agents import free_port, wait_until
from tests.deploy import podman

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
AGENTS = ("agent-1", "agent-2", "agent-3")
TASK = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo hello from compose > GREETING.md'"]
```
"""


def podman_compose() -> list[str] | None:
    """How to run podman-compose (the `deploy` optional dependencies), or None."""
    beside = Path(sys.executable).with_name("podman-compose")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("podman-compose")
    return [found] if found else None


def _missing() -> str | None:
    if podman_compose() is None:
        return "podman-compose is not installed (make test-deploy installs the `deploy` extra)"
    return podman.missing()


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


class Compose:
    def __init__(self, project: str, env: dict[str, str]) -> None:
        self.project = project
        self.env = env

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        command = [*(podman_compose() or []), "--project-name", self.project, "--file", str(COMPOSE), *args]
        done = subprocess.run(
            command, env={**podman.environment(), **self.env}, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman-compose {' '.join(args)} exited {done.returncode}: {done.stderr[-3000:]}")
        return done

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[tuple[Compose, str]]:
    """The compose project up; its forge's URL. Down (volumes too) at the end, whatever happened."""
    tokens = tmp_path / "secrets"
    tokens.mkdir()
    for agent in AGENTS:
        path = tokens / f"{agent}-token"
        path.write_text(f"{agent}-token")  # what docker/compose/forge-seed.yaml gives each agent
        os.chown(path, 10001, 10001)  # the image's user, as compose.yaml says
        path.chmod(0o400)
    port = free_port()
    project = f"bzzz-test-compose-{secrets.token_hex(3)}"
    running = Compose(project, {"BZZZ_FORGE_PORT": str(port), "BZZZ_SECRETS": str(tokens)})
    try:
        running.run("up", "--detach")
        yield running, f"http://127.0.0.1:{port}"
    finally:
        for service in ("forge", *AGENTS):  # what they said, for a failure's report
            print(f"--- {service}\n" + podman.logs(running.container(service))[-3000:])
        running.run("down", "--volumes", "--timeout", "20", check=False)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


def peers_of(compose: Compose, agent: str) -> set[str]:
    done = podman.exec_(compose.container(agent), "bzzz", "mesh", "peers", "--json")
    return {peer["node_id"] for peer in json.loads(done.stdout)} if done.returncode == 0 else set()


def test_the_compose_agents_find_each_other_and_turn_a_forge_issue_into_a_pull_request(
    compose: tuple[Compose, str],
) -> None:
    project, forge = compose
    alice = {"Authorization": "token alice-token"}
    wait_until(lambda: answers(f"{forge}/rate_limit"), 120, "the compose forge to answer")
    for agent in AGENTS:
        wait_until(
            lambda agent=agent: podman.exec_(project.container(agent), "bzzz", "ctl", "health").returncode == 0,
            180,
            f"{agent} to be healthy (every worker running, the executor's sandbox check passed)",
        )
    for agent in AGENTS:
        others = set(AGENTS) - {agent}
        wait_until(lambda agent=agent, others=others: others <= peers_of(project, agent), 120, f"{agent}'s peers")

    reply = requests.post(
        f"{forge}/repos/alice/widgets/issues",
        headers=alice,
        json={"title": "Add a greeting", "body": TASK, "labels": ["bzzz-task"]},
        timeout=10,
    )
    number = reply.json()["number"]

    def pull_opened() -> list[dict[str, str]]:
        comments = requests.get(f"{forge}/repos/alice/widgets/issues/{number}/comments", headers=alice, timeout=10)
        return [c for c in comments.json() if "Opened " in c["body"]]

    wait_until(pull_opened, 300, f"a comment on #{number} saying a pull request was opened")
    pulls = requests.get(f"{forge}/repos/alice/widgets/pulls", headers=alice, timeout=10).json()
    assert len(pulls) == 1
    assert pulls[0]["head"]["ref"] in {f"bzzz/{number}-{agent}" for agent in AGENTS}
    assert "in a sandbox (bubblewrap; the agent's own uid 10001 in a user namespace" in pulls[0]["body"]
    logs = project.run("logs", "forge").stdout
    assert "forge listening on" in logs
