"""docker/systemd/bzzz-agent.service on a bare host: a container with systemd as PID 1 and the
agent installed where the unit expects it (tests/deploy/systemd.Containerfile, FROM the agent
image). The unit passes `systemd-analyze verify`; the agent starts as the unit's own user under
its hardening, works an issue of a forge in the executor's bubblewrap sandbox (the hardening
leaves it the namespaces it needs), and after a `kill -9` systemd starts it again.

The container is privileged: it stands for a host, whose PID 1 has every capability it needs to
set up a unit's sandboxing (mount namespaces for ProtectSystem=, PrivateTmp=, ...)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agents import toml_config, wait_until
from tests.deploy import podman
from tests.forge.harness import start_forge, stop_forge
from tests.issues import SEED, agent_workers, open_issue, wait_for_comment

REPO = Path(__file__).resolve().parents[2]
UNIT_DIR = REPO / "docker" / "systemd"
CONTAINERFILE = Path(__file__).with_name("systemd.Containerfile")
IMAGE = "localhost/bzzz-agent-systemd:latest"
UNIT = "bzzz-agent.service"
TOKEN = "agent-1-secret-token"  # agent-1's on the forge (tests/issues.py SEED)
TASK = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo hello from a systemd unit > GREETING.md'"]
```
"""

pytestmark = pytest.mark.skipif(podman.missing() is not None, reason=str(podman.missing()))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The agent image with systemd, built from a context holding only the unit's files."""
    context = tmp_path_factory.mktemp("systemd-image")
    for name in ("bzzz-agent.service", "bzzz.sysusers.conf"):
        shutil.copy(UNIT_DIR / name, context / name)
    shutil.copy(CONTAINERFILE, context / "Containerfile")
    podman.podman(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"AGENT_IMAGE={podman.AGENT_IMAGE}",
        "--tag",
        IMAGE,
        str(context),
        timeout=900,
    )
    return IMAGE


@pytest.fixture
def host(image: str) -> Iterator[str]:
    """A running container with systemd as PID 1, on the host's network (to reach the forge)."""
    with podman.container(image, options=["--systemd=always", "--privileged", "--network", "host"]) as name:
        # The image's VOLUME (/var/lib/bzzz) is an anonymous volume of this container's: removed
        # with it below, or the machine's shared store keeps one per test.
        volumes = podman.podman("inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", name).stdout.split()
        wait_until(
            lambda: podman.exec_(name, "systemctl", "is-system-running").stdout.strip() in ("running", "degraded"),
            180,
            "systemd in the container to finish booting",
        )
        yield name
    for volume in volumes:
        podman.podman("volume", "rm", "--force", volume, check=False)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


def sh(host: str, script: str, input: str | None = None) -> str:
    done = podman.podman("exec", "--interactive", host, "sh", "-c", script, input=input, timeout=120)
    return done.stdout


def unit_property(host: str, name: str) -> str:
    return sh(host, f"systemctl show --property {name} --value {UNIT}").strip()


def answers(host: str) -> bool:
    return podman.exec_(host, "bzzz", "ctl", "status", "--run-dir", "/var/lib/bzzz/run").returncode == 0


def test_the_unit_passes_systemd_analyze_verify_which_rejects_a_broken_one(host: str) -> None:
    verify = podman.exec_(host, "systemd-analyze", "verify", f"/etc/systemd/system/{UNIT}")
    complaints = [line for line in (verify.stdout + verify.stderr).splitlines() if UNIT in line]
    assert verify.returncode == 0 and not complaints, verify.stdout + verify.stderr

    # The positive control: the same check finds a mistake in a copy of the unit.
    sh(host, f"sed 's/^Restart=on-failure/Restart=sometimes/' /etc/systemd/system/{UNIT} > /tmp/broken.service")
    broken = podman.exec_(host, "systemd-analyze", "verify", "/tmp/broken.service")
    assert "sometimes" in broken.stdout + broken.stderr


def test_the_agent_runs_hardened_works_an_issue_in_its_sandbox_and_is_restarted_after_kill_9(
    host: str, forge: Any
) -> None:
    # As an operator installs it: the config, and the token as root's own 0600 file.
    workers = agent_workers(forge.url, Path("unused"))
    for worker in workers.values():
        worker.pop("env", None)  # the token comes from the unit (LoadCredential=, GITHUB_TOKEN_FILE)
    sh(host, "cat > /etc/bzzz/bzzz.toml", input=toml_config(Path("/var/lib/bzzz"), workers, node_id="systemd-host"))
    sh(host, "umask 077 && cat > /etc/bzzz/github-token", input=TOKEN + "\n")
    sh(host, f"systemctl enable --now {UNIT}")
    wait_until(lambda: answers(host), 120, "the agent to answer `bzzz ctl status`")

    # The unit's user, made by systemd-sysusers, without privileges of any kind.
    pid = unit_property(host, "MainPID")
    status = sh(host, f"cat /proc/{pid}/status")
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    uid = sh(host, "id -u bzzz").strip()
    assert fields["Uid"].split()[0] == uid != "0"
    assert fields["NoNewPrivs"].strip() == "1"
    assert int(fields["CapBnd"].strip(), 16) == 0 and int(fields["CapEff"].strip(), 16) == 0
    # The token reaches the agent as a credential only it can read, not the root-only file (the
    # credential is mounted in the service's own mount namespace only, hence nsenter).
    as_agent = ("nsenter", f"--target={pid}", "--mount", "setpriv", f"--reuid={uid}", f"--regid={uid}")
    as_agent += ("--clear-groups",)
    assert podman.exec_(host, *as_agent, "cat", f"/run/credentials/{UNIT}/github-token").stdout.strip() == TOKEN
    assert podman.exec_(host, *as_agent, "cat", "/etc/bzzz/github-token").returncode != 0
    assert sh(host, f"cat /proc/{pid}/environ | tr '\\0' '\\n' | grep ^GITHUB_TOKEN_FILE=").strip() == (
        f"GITHUB_TOKEN_FILE=/run/credentials/{UNIT}/github-token"
    )

    # Under that hardening the executor's sandbox works: an issue becomes a pull request.
    number = open_issue(forge, "Add a greeting", TASK)
    bodies = wait_for_comment(forge, number, "Opened ", timeout=180)
    pulls = forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json()
    assert len(pulls) == 1 and pulls[0]["html_url"] in "\n".join(bodies)
    assert f"in a sandbox (bubblewrap; the agent's own uid {uid} in a user namespace" in pulls[0]["body"]

    # kill -9 of the supervisor: systemd starts it again, and the new one answers.
    assert unit_property(host, "NRestarts") == "0"
    sh(host, f"kill -9 {pid}")
    wait_until(
        lambda: int(unit_property(host, "NRestarts")) >= 1 and unit_property(host, "MainPID") not in ("0", pid),
        120,
        "systemd to restart the killed agent",
    )
    wait_until(lambda: answers(host), 120, "the restarted agent to answer `bzzz ctl status`")
    assert unit_property(host, "ActiveState") == "active"


@pytest.mark.parametrize("option", ["ProtectKernelTunables=yes", "ProcSubset=pid", "RestrictNamespaces=yes"])
def test_each_hardening_the_unit_leaves_out_would_stop_the_sandbox(host: str, option: str) -> None:
    """The positive control of the test above: the executor's start-up check does catch a
    hardening that breaks bubblewrap, and these options (the unit says why it has none of them)
    each do."""
    workers = agent_workers("http://127.0.0.1:9", Path("unused"))
    del workers["github"]
    workers["executor"].pop("env")
    sh(host, "cat > /etc/bzzz/bzzz.toml", input=toml_config(Path("/var/lib/bzzz"), workers, node_id="systemd-host"))
    sh(host, "umask 077 && cat > /etc/bzzz/github-token", input=TOKEN + "\n")
    drop_in = f"/etc/systemd/system/{UNIT}.d"
    sh(host, f"mkdir -p {drop_in} && cat > {drop_in}/extra.conf", input=f"[Service]\n{option}\n")
    sh(host, f"systemctl daemon-reload && systemctl start {UNIT}")
    refusal = "bubblewrap cannot make the task sandbox here"
    wait_until(
        lambda: refusal in sh(host, "cat /var/lib/bzzz/logs/executor.log 2>/dev/null || true"),
        120,
        f"the executor to refuse to start under {option}",
    )
    # Only the executor refuses: the agent itself runs under that option.
    wait_until(lambda: answers(host), 60, "the agent to answer `bzzz ctl status`")


def test_the_agent_stays_down_after_ctl_shutdown_and_after_a_bad_config(host: str) -> None:
    """Restart=on-failure, RestartPreventExitStatus=2: what the operator asked for (exit 0) or
    what a restart cannot fix (exit 2, a bad config) is left down, not restarted in a loop. A
    restart would show at once as SubState auto-restart; it stays dead (or failed)."""
    workers = {"log": {"module": "bzzz.workers.log"}}
    sh(host, "cat > /etc/bzzz/bzzz.toml", input=toml_config(Path("/var/lib/bzzz"), workers, node_id="systemd-host"))
    sh(host, "umask 077 && cat > /etc/bzzz/github-token", input=TOKEN + "\n")
    sh(host, f"systemctl start {UNIT}")
    wait_until(lambda: answers(host), 120, "the agent to answer `bzzz ctl status`")

    podman.exec_(host, "bzzz", "ctl", "shutdown", "--run-dir", "/var/lib/bzzz/run")
    wait_until(lambda: unit_property(host, "MainPID") == "0", 120, "the agent to exit after `bzzz ctl shutdown`")
    assert (unit_property(host, "SubState"), unit_property(host, "NRestarts")) == ("dead", "0")

    sh(host, "echo 'node_id = [' > /etc/bzzz/bzzz.toml")
    sh(host, f"systemctl start {UNIT}")
    wait_until(lambda: unit_property(host, "MainPID") == "0", 120, "the agent to exit on its bad config")
    assert unit_property(host, "ExecMainStatus") == "2"
    assert (unit_property(host, "SubState"), unit_property(host, "NRestarts")) == ("failed", "0")
