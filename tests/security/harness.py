"""What the attacks run against: a forge seed with a trusted maintainer (alice), a stranger
(mallory) and the agent's account (`SEED`), the agent's token (`TOKEN`), and agents run as an
ordinary user (`agent_as`). The fixtures are in tests/security/conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bzzz.supervisor import ControlClient
from tests.agents import Agent, toml_config

TOKEN = "agent-1-secret-token"
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
    labels: [{name: bzzz-task}, {name: bzzz-approved}]
"""


def interpreter_for(uid: int) -> tuple[str, dict[str, str]]:
    """A Python that `uid` can run and that can start workers (its own `sys.executable`), with
    this one's packages: the test's own, or, when that lives where `uid` cannot go (a venv
    made from an interpreter under /root), the system's Python of the same version."""
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    # As the supervisor does: its workers are started with its own sys.executable.
    spawn = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import bzzz._core'], check=True)"
    if subprocess.run([*drop, sys.executable, "-c", spawn], capture_output=True, cwd="/").returncode == 0:
        return sys.executable, {}
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    paths = [p for p in sys.path if p and os.path.isdir(p) and not p.startswith(sys.base_prefix)]
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    if (
        os.path.exists(system)
        and subprocess.run(
            [*drop, system, "-c", spawn], capture_output=True, cwd="/", env={**os.environ, **env}
        ).returncode
        == 0
    ):
        return system, env
    pytest.skip(f"no Python that uid {uid} can run with this test's packages")


@contextmanager
def agent_as(uid: int, workers: Callable[[Path], dict[str, dict[str, Any]]]) -> Iterator[tuple[Agent, Path]]:
    """An agent run as the ordinary user `uid`, with `workers(token_file)`: its data dir and
    token are its own, under a path it can search (pytest's tmp dir is root's alone)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another uid needs root")
    python, python_env = interpreter_for(uid)
    root = Path(tempfile.mkdtemp(prefix="bzzz-as-uid-"))
    root.chmod(0o755)
    data_dir, token_file = root / "agent", root / "token"
    data_dir.mkdir()
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    config = data_dir / "bzzz.toml"
    config.write_text(toml_config(data_dir, workers(token_file)))
    for path in (data_dir, token_file, config):
        os.chown(path, uid, uid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")} | {"HOME": str(root), **python_env}
    process = subprocess.Popen(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--inh-caps=-all",
            python,
            "-m",
            "bzzz.cli.main",
            "agent",
            "run",
            "--config",
            str(config),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=root,
    )
    agent = Agent(process, ControlClient(data_dir / "run", timeout_s=5), data_dir, data_dir / "run")

    try:
        try:
            agent.wait_for(agent.answering, 30, "the control socket")
        except AssertionError as err:
            said = process.stdout.read() if process.poll() is not None and process.stdout else ""
            raise AssertionError(f"{err}: {said[-2000:]}") from None
        yield agent, token_file
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
