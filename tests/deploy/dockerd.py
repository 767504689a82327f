"""A private Docker daemon for the Swarm tests: its own data root, exec root, socket and pid file
in one temporary folder, so it never meets another dockerd (nor the host's, if any), and all of
it is gone afterwards, even when a test fails.

Debian's docker.io is called by its full paths: the `docker` first on PATH may be a client only.
The daemon touches no firewall and no bridge (`--iptables=false --ip-forward=false
--bridge=none`): the agents use the host network, and the host's netfilter stays as it was.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"


def missing() -> str | None:
    """Why a private dockerd cannot run here, or None."""
    if not (os.access(DOCKERD, os.X_OK) and os.access(DOCKER, os.X_OK)):
        return "Debian's docker.io (dockerd) is not installed (make container-sysdeps)"
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    return None


@dataclass
class Dockerd:
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: str | bytes | None = None,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this daemon; `env` is added to the client's environment (the
        variables `docker stack deploy` substitutes)."""
        done = subprocess.run(
            [DOCKER, "--host", f"unix://{self.socket}", *args],
            input=input.encode() if isinstance(input, str) else input,
            capture_output=True,
            timeout=timeout,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}, **(env or {})},
        )
        result = subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {done.returncode}: {result.stderr.strip()[-2000:]}")
        return result

    def log(self) -> str:
        return (self.root / "dockerd.log").read_text(errors="replace")[-4000:]

    def load(self, archive: Path) -> None:
        """`docker load` of a docker-archive tar (what `podman save` writes)."""
        with archive.open("rb") as tar:
            done = subprocess.run(
                [DOCKER, "--host", f"unix://{self.socket}", "load"], stdin=tar, capture_output=True, timeout=600
            )
        if done.returncode != 0:
            raise AssertionError(f"docker load exited {done.returncode}: {done.stderr.decode(errors='replace')}")

    def swarm_init(self) -> str:
        """A one-node swarm on 127.0.0.1, on free ports (not 2377 and 4789, which another swarm on
        this machine may hold); returns this node's id."""
        listen = f"127.0.0.1:{free_port()}"
        self.docker(
            "swarm",
            "init",
            "--advertise-addr",
            listen,
            "--listen-addr",
            listen,
            "--data-path-port",
            str(free_udp_port_below(49152)),
        )
        return self.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_udp_port_below(limit: int) -> int:
    """A free UDP port in 20000..limit (Swarm's VXLAN data path port must be below 49152, where
    the kernel's ephemeral range does not reach)."""
    for _ in range(200):
        port = random.randrange(20000, limit)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free UDP port below {limit}")


@contextmanager
def private_dockerd(ready_timeout: float = 120) -> Iterator[Dockerd]:
    """A dockerd of its own, up and answering; stopped and its folder removed at the end."""
    # Short, under /tmp: the daemon's and containerd's unix sockets live in it (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="bzd-", dir="/tmp"))
    (root / "daemon.json").write_text("{}\n")  # not the host's /etc/docker/daemon.json
    process = subprocess.Popen(
        [
            DOCKERD,
            "--config-file",
            str(root / "daemon.json"),
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--host",
            f"unix://{root / 'docker.sock'}",
            "--iptables=false",
            "--ip-forward=false",
            "--bridge=none",
        ],
        stdout=(root / "dockerd.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    daemon = Dockerd(root, process)
    try:
        deadline = time.monotonic() + ready_timeout
        while daemon.docker("version", check=False, timeout=30).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"dockerd did not come up: {daemon.log()}")
            time.sleep(0.5)
        yield daemon
    finally:
        _stop(daemon)


def _stop(daemon: Dockerd) -> None:
    with suppress(Exception):
        if daemon.docker("info", "--format", "{{.Swarm.LocalNodeState}}", check=False, timeout=30).stdout.strip() in (
            "active",
            "pending",
        ):
            daemon.docker("swarm", "leave", "--force", check=False, timeout=120)
    containerd = _pid(daemon.root / "exec" / "containerd" / "containerd.pid")
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
        try:
            daemon.process.wait(60)
        except subprocess.TimeoutExpired:
            daemon.process.kill()
            daemon.process.wait()
    # What this daemon started and left (its containerd, container shims): found by our folder
    # in their command lines, so nothing of anyone else's is touched.
    for pid in [p for p in [containerd] if p] + _processes_naming(daemon.root):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for mountpoint in _mounts_under(daemon.root):
        subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
    shutil.rmtree(daemon.root, ignore_errors=True)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _processes_naming(root: Path) -> list[int]:
    found = []
    needle = str(root).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def _mounts_under(root: Path) -> list[Path]:
    """Mount points at or below `root`, deepest first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = Path(line.split()[4].encode().decode("unicode_escape"))
        if point == root or point.is_relative_to(root):
            points.append(point)
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def service_tasks(daemon: Dockerd, service: str) -> list[dict[str, object]]:
    """`docker service ps` of `service` as JSON rows (state, node, error)."""
    out = daemon.docker("service", "ps", "--no-trunc", "--format", "{{json .}}", service).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]
