"""A mesh at work for the monitor's page tests and benchmark: the demo's forge and its three
agents (`bzzz agent run`, every worker, scripted command tasks, hmmm discussions with a short
objection window), and a real `bzzz monitor` beside them, all as processes under one folder.

Built from the demo's own pieces (`bzzz.cli.demo`), so what the page shows here is what an
operator sees with `bzzz demo --keep`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bzzz._core import MerkleLog
from bzzz.cli import demo
from bzzz.monitor.launch import MonitorProcess
from bzzz.paths import DataDir, merkle_dir
from bzzz.supervisor import ControlClient
from tests.agents import wait_until

NO_OLLAMA = "http://127.0.0.1:9"  # nothing answers there: the agents do command tasks only


def task(text: str, command: str) -> str:
    """An issue body the agents work: a shell command in the `bzzz-task` block."""
    return f'{text}\n\n```bzzz-task\nrun: ["{command}"]\n```\n'


def following(run_dir: Path) -> list[str]:
    """The node ids of the peers this agent hears that follow discussions (hmmm is up there)."""
    return [
        str(p["node_id"]) for p in demo._safe_peers(run_dir) if (p["capabilities"].get("hmmm") or {}).get("follows")
    ]


@dataclass
class WorkingMesh:
    root: Path
    forge_url: str
    page_url: str
    agents: dict[str, demo.Running] = field(default_factory=dict)
    monitor: MonitorProcess | None = None

    def file_issue(self, title: str, body: str) -> str:
        """Files an issue as alice (approved: the agents trust her) and returns "alice/widgets#N"
        (issues and pull requests share one sequence of numbers)."""
        with httpx.Client(base_url=self.forge_url, headers={"Authorization": "token alice-token"}) as client:
            answer = client.post(
                "/repos/alice/widgets/issues", json={"title": title, "body": body, "labels": ["bzzz-task"]}, timeout=30
            )
        answer.raise_for_status()
        return f"alice/widgets#{answer.json()['number']}"

    def pulls(self) -> list[dict[str, object]]:
        with httpx.Client(base_url=self.forge_url, headers={"Authorization": "token alice-token"}) as client:
            return list(client.get("/repos/alice/widgets/pulls", params={"state": "all"}, timeout=30).json())

    def log_key(self, name: str) -> str:
        with MerkleLog.open(merkle_dir(DataDir(self.root / name).log)) as log:
            return log.key.hex()

    def run_dir(self, name: str) -> Path:
        return self.root / name / "run"

    def start_agent(self, name: str) -> None:
        """`bzzz agent run` with the agent's config (written once, kept across restarts)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_") and k != "GITHUB_TOKEN"}
        process = subprocess.Popen(
            [sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(self.root / name / "bzzz.toml")],
            stdout=(self.root / f"{name}.out").open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.agents[name] = demo.Running(name, self.root / name, process)

    def shutdown_agent(self, name: str) -> None:
        """`bzzz ctl shutdown`: every worker stopped, the supervisor gone."""
        ControlClient(self.run_dir(name), timeout_s=10).call("shutdown")
        self.agents[name].process.wait(60)


@contextmanager
def working_mesh(root: Path) -> Iterator[WorkingMesh]:
    """The forge, the three agents (each hearing the two others) and the monitor; all stopped at
    the end. No issue is filed: the test files its own."""
    root.mkdir(parents=True, exist_ok=True)
    demo._write_seed(root / "seed.yaml")
    forge, forge_url = demo._start_forge(root, root / "seed.yaml")
    mesh = WorkingMesh(root, forge_url, page_url="")
    try:
        bootstrap: str | None = None
        addresses = []
        for name in demo.AGENTS:
            port = demo._free_port()
            demo._agent_config(root, name, forge_url, port, bootstrap, [], NO_OLLAMA, embedded=False)
            mesh.start_agent(name)
            addresses.append(f"/ip4/127.0.0.1/tcp/{port}/p2p/{demo._peer_id(mesh.run_dir(name))}")
            bootstrap = bootstrap or addresses[0]
        mesh.monitor = demo._start_monitor(root, addresses, "127.0.0.1:0")
        mesh.page_url = mesh.monitor.url
        for name in demo.AGENTS:
            wait_until(
                lambda name=name: len(following(mesh.run_dir(name))) == len(demo.AGENTS) - 1,
                120,
                f"{name} hearing the two other agents, which follow discussions",
            )
        yield mesh
    finally:
        demo._stop([a for a in mesh.agents.values() if a.process.poll() is None])
        if mesh.monitor is not None:
            mesh.monitor.stop()
        forge.terminate()
        forge.wait(30)
