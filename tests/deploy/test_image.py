"""The production image (docker/Containerfile) beside an agent on the host and a forge: the
containerised agent joins the mesh and turns a forge issue into a pull request from inside its
sandbox; its GitHub token, given as a podman secret, shows up in none of the image's layers,
its config, its logs or its data dir; without the host's allowance the sandbox refuses tasks
and says what to allow.

Needs podman and the image: `make test-image` builds it and runs these tests. The image runs
with `--network host` (as the stack does), so the forge and the host agent on 127.0.0.1 are
reachable from it.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz.mesh.client import MeshClient
from tests.agents import Agent, free_port, mesh_worker, toml_config, wait_until
from tests.deploy import podman
from tests.deploy.podman import AGENT_IMAGE
from tests.forge.harness import Forge, start_forge, stop_forge
from tests.issues import github_and_executor, open_issue, wait_for_comment

pytestmark = pytest.mark.skipif(bool(reason := podman.missing()), reason=reason or "")

# What the host must allow for bubblewrap in a podman container (docker/README.md): its own
# /proc. podman's default seccomp profile already lets it make user namespaces.
SANDBOX_OPTIONS = ["--security-opt", "unmask=/proc/*"]
SECRET_PATH = "/run/secrets/github-token"
TASK = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo hello from the container > GREETING.md'"]
```
"""


@pytest.fixture
def token() -> str:
    """A token no other file on the machine holds, so finding it anywhere means a leak."""
    return f"bzzz-image-test-{secrets.token_hex(16)}"


@pytest.fixture
def forge(tmp_path: Path, token: str) -> Iterator[Forge]:
    # Only the container's login (agent-1, with the secret token) may push to alice/tasks; the
    # host agent runs no github worker at all: a pull request can only be the container's.
    seed = f"""
users:
  - {{login: alice, site_admin: true, tokens: [alice-token]}}
  - {{login: agent-1, tokens: [{token}]}}
repos:
  - owner: alice
    name: tasks
    collaborators: {{agent-1: push}}
    files: {{README.md: "# Tasks\\n"}}
    labels: [{{name: bzzz-task}}]
"""
    running = start_forge(tmp_path / "forge", seed=seed)
    yield running
    stop_forge(running)


@pytest.fixture
def token_secret(tmp_path: Path, token: str) -> Iterator[tuple[str, Path]]:
    path = tmp_path / "secret" / "github-token"  # its own dir: the forge's seed holds the token too
    path.parent.mkdir()
    path.write_text(token + "\n")
    path.chmod(0o600)
    with podman.secret(path) as name:
        yield name, path


def container_config(tmp_path: Path, workers: dict[str, dict[str, Any]], node_id: str) -> Path:
    """The agent's config, mounted read-only at the image's BZZZ_CONFIG path."""
    path = tmp_path / f"{node_id}.toml"
    path.write_text(toml_config(Path("/var/lib/bzzz"), workers, node_id=node_id))
    path.chmod(0o644)
    return path


def data_volume(tmp_path: Path, name: str) -> Path:
    """A host dir as the container's data volume, owned by the image's uid 10001."""
    path = tmp_path / name
    path.mkdir()
    os.chown(path, 10001, 10001)
    return path


def agent_options(config: Path, data: Path, secret_name: str, *extra: str) -> list[str]:
    return [
        "--network",
        "host",
        "--volume",
        f"{config}:/etc/bzzz/bzzz.toml:ro",
        "--volume",
        f"{data}:/var/lib/bzzz",
        "--secret",
        f"{secret_name},target=github-token,uid=10001,mode=0400",
        *extra,
    ]


def wait_healthy(name: str, timeout: float = 180) -> float:
    """Seconds from now until the image's own health check passes."""
    started = time.monotonic()

    def ready() -> bool:
        if not podman.running(name):
            raise AssertionError(f"the container exited: {podman.logs(name)[-3000:]}")
        return podman.healthy(name)

    wait_until(ready, timeout, "the container's health check")
    return time.monotonic() - started


def found_in_layers(image_tar: Path, needle: bytes) -> list[str]:
    """Every member of every layer (and the config and manifest) of a `podman save` archive
    whose bytes hold `needle`."""
    hits = []
    with tarfile.open(image_tar) as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if needle in data:
                hits.append(member.name)
            if member.name.endswith(".tar") or data[257:262] == b"ustar":
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    for inner in layer.getmembers():
                        if inner.isfile() and needle in layer.extractfile(inner).read():  # type: ignore[union-attr]
                            hits.append(f"{member.name}:{inner.name}")
    return hits


def found_in_dir(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


@pytest.fixture
def host_agent(start_agent: Callable[..., Agent]) -> tuple[Agent, str]:
    """An agent on the host with only its log and mesh (a fixed port, as in a cluster)."""
    agent = start_agent(
        {"log": {"module": "bzzz.workers.log"}, "mesh": mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}")},
        name="host",
        node_id="host-agent",
    )
    agent.wait_running("mesh", timeout=60)
    address = wait_until(lambda: MeshClient(agent.run_dir, timeout_s=2).status()["listen"], 60, "the host listening")
    return agent, address[0]


def test_the_container_joins_the_mesh_turns_an_issue_into_a_pull_request_and_never_shows_its_token(
    tmp_path: Path, forge: Forge, host_agent: tuple[Agent, str], token: str, token_secret: tuple[str, Path]
) -> None:
    host, host_address = host_agent
    secret_name, secret_file = token_secret
    workers = {
        **github_and_executor(forge.url, "agent-1", Path(SECRET_PATH)),
        "mesh": mesh_worker(bootstrap=[host_address]),
    }
    config = container_config(tmp_path, workers, "container-agent")
    data = data_volume(tmp_path, "container-data")
    options = agent_options(config, data, secret_name, *SANDBOX_OPTIONS)
    started = time.monotonic()
    with podman.container(AGENT_IMAGE, options=options) as name:
        to_healthy = wait_healthy(name)
        took = time.monotonic() - started
        print(f"\n{AGENT_IMAGE}: start to healthy {took:.1f} s (health check passing after {to_healthy:.1f} s)")

        # It joined the mesh: the host agent's peer table holds the container's peer id.
        shown = podman.exec_(name, "bzzz", "mesh", "status", "--json")
        assert shown.returncode == 0, shown.stderr
        container_peer = json.loads(shown.stdout)["peer_id"]
        wait_until(
            lambda: container_peer in {p["peer_id"] for p in MeshClient(host.run_dir).peers()},
            120,
            "the host agent to hear the container",
        )

        # It works an issue in its sandbox and opens the pull request as agent-1.
        number = open_issue(forge, "Add a greeting", TASK)
        bodies = wait_for_comment(forge, number, "Opened ", timeout=300)
        pulls = forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json()
        assert len(pulls) == 1, pulls
        pull = pulls[0]
        assert pull["user"]["login"] == "agent-1" and pull["head"]["ref"] == f"bzzz/{number}-agent-1"
        assert pull["html_url"] in "\n".join(bodies)
        # The sandbox held: bubblewrap, as the image's unprivileged uid.
        assert "in a sandbox (bubblewrap; the agent's own uid 10001 in a user namespace" in pull["body"], pull["body"]

        # Its status and its workers' logs, through podman exec.
        status = podman.exec_(name, "bzzz", "ctl", "status")
        assert status.returncode == 0, status.stderr
        rows = {line.split()[0]: line.split()[2] for line in status.stdout.splitlines()[3:]}
        assert rows == dict.fromkeys(("log", "github", "executor", "mesh"), "running"), status.stdout
        executor_log = podman.exec_(name, "bzzz", "ctl", "logs", "executor", "-n", "200")
        assert executor_log.returncode == 0 and "task done" in executor_log.stdout, executor_log.stdout[-3000:]

        # The token: in none of the image's layers, its config and environment, its logs, its data.
        needle = token.encode()
        image_tar = podman.save(AGENT_IMAGE, tmp_path / "image.tar")
        assert found_in_layers(image_tar, needle) == []
        assert token not in json.dumps(podman.inspect(name)) and token not in json.dumps(
            podman.inspect(AGENT_IMAGE, "image")
        )
        assert token not in podman.logs(name)
        worker_logs = "".join(
            podman.exec_(name, "bzzz", "ctl", "logs", worker, "-n", "100000").stdout
            for worker in ("log", "github", "executor", "mesh")
        )
        assert token not in worker_logs
        assert found_in_dir(data, needle) == []

        # Positive controls: each of those looks would have found it.
        assert found_in_dir(secret_file.parent, needle) == [secret_file]
        assert podman.exec_(name, "cat", SECRET_PATH).stdout.strip() == token  # the agent did hold it
        leak = podman.exec_(name, "sh", "-c", f"cat {SECRET_PATH} > /proc/1/fd/1; cp {SECRET_PATH} /var/lib/bzzz/leak")
        assert leak.returncode == 0, leak.stderr
        assert token in podman.logs(name)
        assert found_in_dir(data, needle) == [data / "leak"]
        leaky_layer = tmp_path / "leaky.tar"
        with tarfile.open(leaky_layer, "w") as archive:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as layer:
                info = tarfile.TarInfo("etc/token")
                info.size = len(needle)
                layer.addfile(info, io.BytesIO(needle))
            info = tarfile.TarInfo("0123abcd/layer.tar")
            info.size = len(inner.getvalue())
            archive.addfile(info, io.BytesIO(inner.getvalue()))
        assert "0123abcd/layer.tar:etc/token" in found_in_layers(leaky_layer, needle)
    with podman.created(AGENT_IMAGE, options=["--env", f"GITHUB_TOKEN={token}"]) as leaky:
        assert token in json.dumps(podman.inspect(leaky))  # the inspect above would have shown it


def test_without_its_own_proc_the_sandbox_refuses_tasks_and_says_what_the_host_must_allow(
    tmp_path: Path, forge: Forge, token_secret: tuple[str, Path]
) -> None:
    secret_name, _ = token_secret
    workers = github_and_executor(forge.url, "agent-1", Path(SECRET_PATH))
    config = container_config(tmp_path, workers, "refusing-agent")
    data = data_volume(tmp_path, "refusing-data")
    # The same agent, config and secret as the test above, without SANDBOX_OPTIONS.
    with podman.container(AGENT_IMAGE, options=agent_options(config, data, secret_name)) as name:
        executor_log = data / "logs" / "executor.log"  # read on the host: the agent may have given up

        def refused() -> str:
            said = executor_log.read_text() if executor_log.exists() else ""
            return next((line for line in said.splitlines() if "cannot start" in line), "")

        line = wait_until(refused, 180, "the executor to refuse")
        assert "bubblewrap cannot make the task sandbox here" in line
        assert "Can't mount proc" in line  # bubblewrap's own failure, not the config's or the token's
        assert "--security-opt unmask=/proc/*" in line
        assert not podman.running(name) or not podman.healthy(name)
        # ... and the container's own output (`podman logs`) says it too, with the fix.
        wait_until(lambda: "unmask=/proc/*" in podman.logs(name), 120, "the refusal in the container's logs")
