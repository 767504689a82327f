"""docker/stack.yaml on a one-node swarm: a private dockerd (tests/deploy/dockerd.py) loads the
agent image from podman, labels its node, and deploys the stack as an operator would. The
agent runs healthy on the host network with the shipped stack-agent.toml, answers `bzzz ctl
status` through `docker exec`, has its token at /run/secrets and nowhere in what Docker shows,
and comes back with the same identity after it is killed (restart policy, data volume)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.agents import wait_until
from tests.deploy import dockerd, podman

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "docker" / "stack.yaml"
STACK_AGENT = REPO / "docker" / "stack-agent.toml"
NAME = "bzzz-test"
SERVICE = f"{NAME}_agent"

pytestmark = pytest.mark.skipif(
    bool(dockerd.missing() or podman.missing()), reason=str(dockerd.missing() or podman.missing())
)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dockerd.Dockerd]:
    """A private dockerd holding the agent image, as a one-node swarm whose node may run agents."""
    with dockerd.private_dockerd() as daemon:
        archive = podman.save(podman.AGENT_IMAGE, tmp_path_factory.mktemp("image") / "agent.tar")
        try:
            daemon.load(archive)
        finally:
            archive.unlink()
        node = daemon.swarm_init()
        daemon.docker("node", "update", "--label-add", "bzzz.agent=true", node)
        yield daemon


def agent_container(daemon: dockerd.Dockerd, other_than: str | None = None) -> str | None:
    """The id of the stack's running agent container (not `other_than`), if there is one."""
    ids = daemon.docker("ps", "--quiet", "--filter", f"label=com.docker.swarm.service.name={SERVICE}").stdout.split()
    ids = [i for i in ids if i != other_than]
    return ids[0] if ids else None


def healthy(daemon: dockerd.Dockerd, container: str) -> bool:
    health = daemon.docker("inspect", "--format", "{{.State.Health.Status}}", container, check=False).stdout
    return health.strip() == "healthy"


def wait_healthy(daemon: dockerd.Dockerd, other_than: str | None = None) -> str:
    def up() -> str | None:
        container = agent_container(daemon, other_than)
        return container if container and healthy(daemon, container) else None

    try:
        return str(wait_until(up, 240, "the stack's agent to be running and healthy"))
    except AssertionError:
        tasks = dockerd.service_tasks(daemon, SERVICE)
        raise AssertionError(f"no healthy agent; tasks: {tasks}; dockerd: {daemon.log()[-1500:]}") from None


def shipped_config(extra: str = "") -> str:
    """The shipped stack-agent.toml (plus `extra`), only on a free port: 4001 may be another
    agent's on this machine."""
    shipped = STACK_AGENT.read_text()
    assert "/tcp/4001" in shipped
    return shipped.replace("/tcp/4001", f"/tcp/{dockerd.free_port()}") + extra


@contextmanager
def deployed(daemon: dockerd.Dockerd, config: Path, token: str, **env: str) -> Iterator[str]:
    """docker/stack.yaml deployed as stack NAME with the agent config `config` and `token` as its
    Swarm secret (whose name it gives); the stack and the secret removed at the end."""
    secret = f"bzzz-test-token-{secrets.token_hex(4)}"
    daemon.docker("secret", "create", secret, "-", input=token)
    env = {
        "BZZZ_IMAGE": podman.AGENT_IMAGE,
        "BZZZ_AGENT_CONFIG": str(config),
        "BZZZ_CONFIG_VERSION": secrets.token_hex(4),
        "BZZZ_TOKEN_SECRET": secret,
        **env,
    }
    try:
        done = daemon.docker("stack", "deploy", "--resolve-image", "never", "--compose-file", str(STACK), NAME, env=env)
        assert "Ignoring unsupported options" not in done.stderr, done.stderr  # all of stack.yaml holds in Swarm
        yield secret
    finally:
        daemon.docker("stack", "rm", NAME, check=False)
        wait_until(lambda: agent_container(daemon) is None, 120, "the stack's containers to be removed")
        # A secret in use cannot be removed, and the task may outlive its container a moment.
        deadline = time.monotonic() + 60
        while daemon.docker("secret", "rm", secret, check=False).returncode != 0 and time.monotonic() < deadline:
            time.sleep(1)


def test_the_stack_runs_a_healthy_agent_on_the_labelled_node_with_its_token_a_swarm_secret(
    swarm: dockerd.Dockerd, tmp_path: Path
) -> None:
    token = f"ghp_{secrets.token_hex(16)}"  # distinctive: found only where it really is
    config = tmp_path / "stack-agent.toml"
    config.write_text(shipped_config())
    with deployed(swarm, config, token, BZZZ_HEALTH_INTERVAL="3s") as secret:
        container = wait_healthy(swarm)

        # One agent (mode: global on a one-node swarm), named after its node, every worker running.
        hostname = swarm.docker("node", "inspect", "self", "--format", "{{.Description.Hostname}}").stdout.strip()
        status = swarm.docker("exec", container, "bzzz", "ctl", "status").stdout
        assert f"agent {hostname} " in status
        for worker in ("log", "mesh", "hmmm"):
            assert any(line.split()[:3:2] == [worker, "running"] for line in status.splitlines()), status
        replicas = swarm.docker("service", "ls", "--filter", f"name={SERVICE}", "--format", "{{.Replicas}}").stdout
        assert replicas.strip() == "1/1"

        # The token: in the task's secret file, the agent's user's only; nowhere Docker shows.
        assert swarm.docker("exec", container, "cat", "/run/secrets/github-token").stdout == token
        assert swarm.docker("exec", container, "stat", "-c", "%u %a", "/run/secrets/github-token").stdout.split() == [
            "10001",
            "400",
        ]
        shown = {
            "container": swarm.docker("inspect", container).stdout,
            "service": swarm.docker("service", "inspect", SERVICE).stdout,
            "secret": swarm.docker("secret", "inspect", secret).stdout,
            "logs": (lambda done: done.stdout + done.stderr)(swarm.docker("logs", container)),
        }
        assert secret in shown["service"] and "/run/secrets/github-token" in shown["container"]  # the right ones
        for where, text in shown.items():
            assert token not in text, f"the token is in docker {where}"

        # Killed, it is restarted (restart_policy) with the same identity (peer id): the data
        # dir is the stack's volume, not the container's.
        key = ("sha256sum", "/var/lib/bzzz/mesh/identity.key")
        identity = swarm.docker("exec", container, *key).stdout.split()[0]
        swarm.docker("kill", container)
        again = wait_healthy(swarm, other_than=container)
        assert swarm.docker("exec", again, *key).stdout.split()[0] == identity


def test_a_swarm_task_cannot_have_the_sandbox_so_an_executor_there_refuses_to_start_saying_why(
    swarm: dockerd.Dockerd, tmp_path: Path
) -> None:
    """Why stack-agent.toml runs no executor: Swarm cannot give a service the security options
    bubblewrap needs (stack.yaml), and the executor's start-up check says so instead of taking
    tasks it could not confine."""
    config = tmp_path / "with-executor.toml"
    config.write_text(
        shipped_config(
            '\n[workers.executor]\nmodule = "bzzz.workers.executor"\n\n[workers.executor.settings]\n'
            'login = "swarm-agent"\nallow = ["sh"]\ntrust_authors = ["alice"]\n'
        )
    )

    def refusal() -> str | None:
        container = agent_container(swarm)
        if container is None:
            return None
        said = swarm.docker("exec", container, "cat", "/var/lib/bzzz/logs/executor.log", check=False).stdout
        return next((line for line in said.splitlines() if "cannot make the task sandbox" in line), None)

    with deployed(swarm, config, f"ghp_{secrets.token_hex(16)}"):
        said = wait_until(refusal, 240, "the executor in the Swarm task to refuse to start")
        assert "bubblewrap cannot make the task sandbox here" in said
