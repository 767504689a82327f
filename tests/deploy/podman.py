"""podman for the deployment tests: run, exec, logs, inspect, save and remove containers, every
call with the project's `docker/containers.conf` (podman's defaults fail on these hosts), and
a skip reason when podman or an image is missing.

Containers and secrets the tests make are named `bzzz-test-<purpose>-<random>` and removed by
the context managers here, even when a test fails: the image store is shared by the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO / "docker" / "containers.conf"
AGENT_IMAGE = os.environ.get("BZZZ_AGENT_IMAGE", "localhost/bzzz-agent:latest")


def environment() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}


def podman(
    *args: str, check: bool = True, timeout: float = 300, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["podman", *args], env=environment(), capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def missing(image: str = AGENT_IMAGE) -> str | None:
    """Why the tests of `image` cannot run here, or None."""
    if "BZZZ_AGENT_IMAGE" not in os.environ:
        # An image left on the machine may be of other sources than this checkout's.
        return "run by make test-image / make test-deploy, which first build the image from this checkout"
    if shutil.which("podman") is None:
        return "podman is not installed (make container-sysdeps)"
    if os.geteuid() != 0:
        return "the image tests run podman as root (overlay storage, host networking)"
    if podman("image", "exists", image, check=False, timeout=60).returncode != 0:
        return f"image {image} is not built (make test-image builds it and runs these tests)"
    return None


def unique(purpose: str) -> str:
    return f"bzzz-test-{purpose}-{secrets.token_hex(4)}"


@contextmanager
def container(image: str, *args: str, options: Sequence[str] = (), name: str | None = None) -> Iterator[str]:
    """A detached `podman run` of `image` (its entry point given `args`); removed at the end."""
    name = name or unique("agent")
    podman("run", "--detach", "--name", name, *options, image, *args)
    try:
        yield name
    finally:
        podman("rm", "--force", "--volumes", "--time", "5", name, check=False)


@contextmanager
def created(image: str, *args: str, options: Sequence[str] = ()) -> Iterator[str]:
    """A `podman create` of `image`, never started (its config only); removed at the end."""
    name = unique("created")
    podman("create", "--name", name, *options, image, *args)
    try:
        yield name
    finally:
        podman("rm", "--force", "--volumes", name, check=False)


@contextmanager
def secret(value_file: Path, name: str | None = None) -> Iterator[str]:
    """A podman secret holding the contents of `value_file`; removed at the end."""
    name = name or unique("secret")
    podman("secret", "create", name, str(value_file))
    try:
        yield name
    finally:
        podman("secret", "rm", name, check=False)


def exec_(name: str, *command: str, user: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return podman("exec", *(["--user", user] if user else []), name, *command, check=False, timeout=timeout)


def logs(name: str) -> str:
    done = podman("logs", name, check=False)
    return done.stdout + done.stderr


def inspect(name: str, kind: str = "container") -> dict[str, Any]:
    parsed: list[dict[str, Any]] = json.loads(podman(kind, "inspect", name).stdout)
    return parsed[0]


def running(name: str) -> bool:
    return bool(inspect(name)["State"]["Running"])


def healthy(name: str) -> bool:
    """Runs the image's HEALTHCHECK now: podman schedules it with systemd timers, and systemd
    is not PID 1 on every host (nor in CI), so the tests ask for it."""
    return podman("healthcheck", "run", name, check=False, timeout=60).returncode == 0


def save(image: str, path: Path) -> Path:
    """`podman save` of `image` as a docker-archive tar: its config and one tar per layer."""
    podman("save", "--format", "docker-archive", "--output", str(path), image, timeout=600)
    return path


def remove_image(image: str) -> None:
    podman("rmi", "--force", image, check=False)
