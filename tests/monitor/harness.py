"""A mesh of real agents (supervisor; log and mesh workers on 127.0.0.1) and a real `bzzz monitor`
for the monitor's tests, with a small HTTP client and a server-sent-events listener."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bzzz._core import MerkleLog
from bzzz.log.service import LogClient
from bzzz.mesh.client import MeshClient
from bzzz.monitor.launch import MonitorProcess, start_monitor
from bzzz.paths import DataDir, merkle_dir
from tests.agents import Agent, free_port, mesh_worker, wait_until

DEADLINE_S = 90.0  # generous: two cores shared by several test runs


def start_log_agent(
    start_agent: Callable[..., Agent],
    name: str,
    bootstrap: list[str] = (),
    port: int | None = None,
    node_id: str | None = None,  # type: ignore[assignment]
) -> Agent:
    mesh = mesh_worker(f"/ip4/127.0.0.1/tcp/{port or free_port()}", list(bootstrap))
    agent = start_agent({"log": {"module": "bzzz.workers.log"}, "mesh": mesh}, name=name, node_id=node_id or name)
    agent.wait_running("mesh", timeout=DEADLINE_S)
    agent.wait_running("log", timeout=DEADLINE_S)
    wait_until(lambda: MeshClient(agent.run_dir).status()["listen"], DEADLINE_S, f"{name} listening")
    return agent


def address(agent: Agent) -> str:
    return str(MeshClient(agent.run_dir).status()["listen"][0])


def peer_id(agent: Agent) -> str:
    return str(MeshClient(agent.run_dir).status()["peer_id"])


def log_key(agent: Agent) -> str:
    path = merkle_dir(DataDir(agent.data_dir).log)
    wait_until(lambda: (path / "header").exists(), DEADLINE_S, "the log created")
    with MerkleLog.open(path) as opened:
        return opened.key.hex()


def log_length(agent: Agent) -> int:
    with MerkleLog.open(merkle_dir(DataDir(agent.data_dir).log)) as opened:
        return opened.length


def append(agent: Agent, *entries: bytes) -> int:
    """Appends through the agent's log worker; the index of the first."""
    with LogClient(agent.run_dir, sender="test", timeout_s=60.0) as client:
        return client.append(list(entries)).first_index  # type: ignore[return-value]


def monitor_for(tmp_path: Path, bootstrap: list[str]) -> MonitorProcess:
    # Only the test's agents (no mDNS, no DHT: other agents may be running on this machine),
    # and the test agents' broadcast period, so that a gone agent is noticed within seconds.
    mesh = {
        "capabilities_interval_s": 0.5,
        "discovery": {"mdns": False, "dht": False, "redial_initial_s": 0.2, "redial_max_s": 1.0},
    }
    return start_monitor(
        tmp_path / "monitor", bootstrap=bootstrap, node_id="the-monitor", mesh=mesh, timeout_s=DEADLINE_S
    )


class Api:
    def __init__(self, monitor: MonitorProcess) -> None:
        self.monitor = monitor
        self.http = httpx.Client(base_url=monitor.url, timeout=30.0)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def agents(self) -> dict[str, dict[str, Any]]:
        return {a["node_id"]: a for a in self.get("/api/agents")["agents"]}

    def close(self) -> None:
        self.http.close()


class Events:
    """The monitor's /events stream, read in a thread: every (event, data) received."""

    def __init__(self, url: str) -> None:
        self.received: list[tuple[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        wait_until(lambda: any(kind == "hello" for kind, _ in list(self.received)), DEADLINE_S, "the stream's hello")

    def _read(self, url: str) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30.0, read=None)) as client,
                client.stream("GET", url + "events") as r,
            ):
                kind = ""
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        kind = line[len("event: ") :]
                    elif line.startswith("data: "):
                        self.received.append((kind, json.loads(line[len("data: ") :])))
        except httpx.HTTPError:
            self.ended = True  # the monitor stopped under the test's feet: what was received stays

    ended = False

    def of(self, kind: str) -> list[Any]:
        return [data for k, data in list(self.received) if k == kind]

    def close(self) -> None:
        self._stop.set()
