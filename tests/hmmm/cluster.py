"""Agents with the hmmm worker for tests: log, mesh and hmmm workers under a real supervisor,
joined on 127.0.0.1, each thinking with its own scripted Ollama (or with no model)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bzzz._core import MerkleLog
from bzzz.hmmm.client import HmmmClient
from bzzz.log.events import decode_entry
from bzzz.mesh.client import MeshClient
from tests.agents import Agent, free_port, wait_until


def workers(
    *,
    port: int,
    bootstrap: list[str] = (),
    tools: tuple[str, ...] = ("git", "sh"),  # type: ignore[assignment]
    ollama: str | None = None,
    hmmm_settings: dict[str, Any] | None = None,
    gossip: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    mesh = {
        "listen": [f"/ip4/127.0.0.1/tcp/{port}"],
        "capabilities_interval_s": 1,
        "capabilities": {"ollama_endpoints": [ollama] if ollama else [], "tools": list(tools)},
        "discovery": {
            "mdns": False,
            "dht": False,
            "bootstrap": list(bootstrap),
            "redial_initial_s": 0.2,
            "redial_max_s": 1.0,
        },
        "gossip": gossip or {},
    }
    discussing = {"gather_s": 5, **(hmmm_settings or {}), "ollama_endpoints": [ollama] if ollama else []}
    return {
        "log": {"module": "bzzz.workers.log"},
        "mesh": {"module": "bzzz.workers.mesh", "heartbeat_timeout_s": 15.0, "settings": mesh},
        "hmmm": {"module": "bzzz.workers.hmmm", "heartbeat_timeout_s": 15.0, "settings": discussing},
    }


def start_cluster(
    start_agent: Callable[..., Agent],
    names: list[str],
    *,
    ollama: dict[str, str] | None = None,
    tools: dict[str, tuple[str, ...]] | None = None,
    hmmm_settings: dict[str, dict[str, Any]] | None = None,
    gossip: dict[str, Any] | None = None,
) -> list[Agent]:
    """Agents `names`, every one bootstrapping to the first; returns once all hear each other."""
    ollama, tools, hmmm_settings = ollama or {}, tools or {}, hmmm_settings or {}
    ports = {name: free_port() for name in names}
    agents: list[Agent] = []
    first_addr: list[str] = []
    for name in names:
        agent = start_agent(
            workers(
                port=ports[name],
                bootstrap=first_addr,
                ollama=ollama.get(name),
                tools=tools.get(name, ("git", "sh")),
                hmmm_settings=hmmm_settings.get(name),
                gossip=gossip,
            ),
            name=name,
            node_id=name,
        )
        agents.append(agent)
        if not first_addr:
            agent.wait_running("mesh", timeout=30)
            first_addr = [wait_until(lambda a=agent: MeshClient(a.run_dir).status()["listen"], 30, "listening")[0]]
    for agent in agents:
        agent.wait_running("hmmm", timeout=30)
    for agent in agents:
        wait_until(lambda a=agent: len(MeshClient(a.run_dir).peers()) == len(agents) - 1, 30, "every peer heard")
        wait_until(
            lambda a=agent: all(
                p["capabilities"].get("hmmm", {}).get("follows") for p in MeshClient(a.run_dir).peers()
            ),
            30,
            "every peer following",
        )
    return agents


def hmmm(agent: Agent) -> HmmmClient:
    return HmmmClient(agent.run_dir, sender="test", timeout_s=10.0)


def entries(agent: Agent) -> list[dict[str, Any]]:
    """The agent's signed log, decoded."""
    with MerkleLog.open(agent.data_dir / "log" / "hypercore") as log:
        return [e for e in (decode_entry(log.get(i)) for i in range(log.length)) if isinstance(e, dict)]


def messages(agent: Agent, direction: str | None = None, **match: Any) -> list[dict[str, Any]]:
    """The HMMM messages journalled in the agent's log, optionally those matching `match`."""
    return [
        e
        for e in entries(agent)
        if e["type"] == "hmmm_message"
        and (direction is None or e["direction"] == direction)
        and all(e.get(k) == v for k, v in match.items())
    ]


def eventually(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return wait_until(predicate, timeout, what)


def pause(seconds: float) -> None:
    time.sleep(seconds)
