"""Agents for the tests and benchmarks: a real `bzzz agent run` process and its control client.

The `start_agent` fixture (tests/conftest.py, benches/conftest.py) is `agents_under(tmp_path)`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bzzz.bus import ServiceError
from bzzz.supervisor import ControlClient, ControlError


@dataclass
class Agent:
    process: subprocess.Popen[str]
    client: ControlClient
    data_dir: Path
    run_dir: Path

    def call(self, command: str, **properties: Any) -> dict[str, Any]:
        return self.client.call(command, **properties)

    def answering(self) -> bool:
        """Whether its control socket answers."""
        try:
            self.call("status")
        except ControlError:
            return False
        return True

    def worker(self, name: str) -> dict[str, Any]:
        return next(w for w in self.call("status")["workers"] if w["worker"] == name)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if self.process.poll() is not None:
                raise AssertionError(f"the agent exited ({self.process.returncode}) while waiting for {what}")
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def wait_running(self, name: str, other_than: int | None = None, timeout: float = 10.0) -> dict[str, Any]:
        def ready() -> bool:
            w = self.worker(name)
            return bool(w["state"] == "running" and w["pid"] and w["pid"] != other_than)

        self.wait_for(ready, timeout, f"worker {name} running")
        return self.worker(name)


def toml_config(
    data_dir: Path,
    workers: dict[str, dict[str, Any]],
    supervisor: dict[str, Any] | None = None,
    node_id: str = "test-agent",
    run_dir: Path | None = None,
    extra: str = "",
) -> str:
    """The agent's TOML; `extra` is appended as it is (top-level tables such as [github_token])."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v)  # a JSON string is a TOML basic string, escapes and all
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return str(v)

    lines = [f"node_id = {json.dumps(node_id)}", f'data_dir = "{data_dir}"']
    if run_dir is not None:
        lines.append(f'run_dir = "{run_dir}"')
    lines += ["", "[supervisor]"]
    for key, v in {"heartbeat_interval_s": 0.2, **(supervisor or {})}.items():
        lines.append(f"{key} = {value(v)}")
    for name, worker in workers.items():
        lines += ["", f"[workers.{name}]"] + [f"{k} = {value(v)}" for k, v in worker.items()]
    return "\n".join(lines) + "\n" + (f"\n{extra}" if extra else "")


@contextmanager
def agents_under(tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Starts agents (the function it gives) and stops every one still running at the end."""
    agents: list[Agent] = []

    def start(
        workers: dict[str, dict[str, Any]],
        supervisor: dict[str, Any] | None = None,
        name: str = "agent",
        wait: bool = True,
        node_id: str = "test-agent",
        data_dir: Path | None = None,
        run_dir: Path | None = None,
        extra: str = "",
    ) -> Agent:
        """An agent whose config is tmp_path/<name>/bzzz.toml; its data dir is that folder
        unless `data_dir` names another (two agents may then share one), its run dir
        <data dir>/run unless `run_dir` is given."""
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        data_dir = data_dir if data_dir is not None else home
        config = home / "bzzz.toml"
        config.write_text(toml_config(data_dir, workers, supervisor, node_id, run_dir, extra))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
        process = subprocess.Popen(
            [sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        runtime = run_dir if run_dir is not None else data_dir / "run"
        agent = Agent(process, ControlClient(runtime, timeout_s=5), data_dir, runtime)
        agents.append(agent)
        if wait:
            agent.wait_for(agent.answering, 15, "the control socket")
        return agent

    try:
        yield start
    finally:
        for agent in agents:
            if agent.process.poll() is None:
                agent.process.terminate()
                try:
                    agent.process.wait(15)
                except subprocess.TimeoutExpired:
                    agent.process.kill()
                    agent.process.wait()


def mesh_worker(
    listen: str = "/ip4/127.0.0.1/tcp/0",
    bootstrap: list[str] = (),  # type: ignore[assignment]
    **settings: Any,
) -> dict[str, Any]:
    """A mesh worker on 127.0.0.1 for tests; `settings` replace whole top-level settings."""
    return {
        "module": "bzzz.workers.mesh",
        "heartbeat_timeout_s": 10.0,
        "settings": {
            "listen": [listen],
            "capabilities_interval_s": 0.5,
            "capabilities": {"ollama_endpoints": [], "tools": ["git", "sh"]},
            "discovery": {
                "mdns": False,
                "dht": False,
                "bootstrap": list(bootstrap),
                "redial_initial_s": 0.2,
                "redial_max_s": 1.0,
            },
            **settings,
        },
    }


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if value := predicate():
                return value
        except ServiceError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
