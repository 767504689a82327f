"""Five agents, each in a network namespace of its own on one switch (tests/mesh/netns.py):
they find each other by mDNS, by bootstrap addresses alone, or through the DHT rendezvous,
and a host cut off the switch drops out of everyone's peer table and comes back when healed.

Each agent is a real `bzzz agent run` with a mesh worker, listening on its host's own
address; the test talks to it through its run dir (ZeroMQ ipc sockets are files, so they
work across network namespaces).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bzzz.mesh.client import MeshClient
from bzzz.supervisor import ControlClient, ControlError
from tests.agents import toml_config, wait_until
from tests.mesh.netns import Host, Lan, netns_available

pytestmark = pytest.mark.skipif(netns_available() is not None, reason=f"{netns_available()}")

INTERVAL_S = 1.0  # capability broadcasts; a peer silent 3 intervals is gone
AGENTS = 5


@dataclass
class NsAgent:
    host: Host
    data_dir: Path
    peer_id: str = ""

    @property
    def mesh(self) -> MeshClient:
        return MeshClient(self.data_dir / "run", timeout_s=3.0)

    def live_peers(self) -> set[str]:
        return {p["peer_id"] for p in self.mesh.peers()}

    def connected(self) -> set[str]:
        return set(self.mesh.status()["connected"])


def start_agent(host: Host, root: Path, discovery: dict[str, Any]) -> NsAgent:
    data_dir = root / host.name
    data_dir.mkdir(parents=True)
    settings = {
        "listen": [f"/ip4/{host.ip}/tcp/4001"],
        "capabilities_interval_s": INTERVAL_S,
        "capabilities": {"ollama_endpoints": [], "tools": ["sh"]},
        "discovery": {"redial_initial_s": 0.5, "redial_max_s": 2.0, "dht_interval_s": 2.0, **discovery},
    }
    mesh = {"module": "bzzz.workers.mesh", "heartbeat_timeout_s": 15.0, "settings": settings}
    config = data_dir / "bzzz.toml"
    config.write_text(
        toml_config(data_dir, {"mesh": mesh}).replace('node_id = "test-agent"', f'node_id = "{host.name}"')
    )
    log = (data_dir / "agent.out").open("w")
    host.popen([sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)], stdout=log, stderr=log)
    return NsAgent(host, data_dir)


def wait_up(agents: list[NsAgent]) -> None:
    for agent in agents:

        def answering(a: NsAgent = agent) -> Any:
            try:
                ControlClient(a.data_dir / "run", timeout_s=2).call("status")
                return a.mesh.status()["peer_id"]
            except (ControlError, OSError):
                return None

        agent.peer_id = wait_until(answering, 60, f"the agent on {agent.host.name}")


@contextmanager
def cluster(tmp_path: Path, discovery_for: Any) -> Iterator[tuple[Lan, list[NsAgent]]]:
    with Lan(AGENTS) as lan:
        agents: list[NsAgent] = []
        for host in lan.hosts:
            agents.append(start_agent(host, tmp_path, discovery_for(host, agents)))
            if not agents[-1].peer_id:
                wait_up(agents[-1:])  # the next agent may need this one's address
        yield lan, agents


def everyone_hears_everyone(agents: list[NsAgent]) -> bool:
    ids = {a.peer_id for a in agents}
    return all(a.live_peers() == ids - {a.peer_id} for a in agents)


def address(agent: NsAgent) -> str:
    return f"/ip4/{agent.host.ip}/tcp/4001/p2p/{agent.peer_id}"


def test_agents_on_one_lan_find_each_other_by_mdns_and_a_partitioned_host_drops_out_and_returns(
    tmp_path: Path,
) -> None:
    with cluster(tmp_path, lambda host, earlier: {"dht": False}) as (lan, agents):
        wait_until(lambda: everyone_hears_everyone(agents), 90, "every agent to hear every other by mDNS")

        cut, rest = agents[-1], agents[:-1]
        cut.host.partition()
        wait_until(lambda: cut.live_peers() == set(), 30, "the cut-off agent to hear nobody")
        wait_until(lambda: all(cut.peer_id not in a.live_peers() for a in rest), 30, "the others to drop it")
        assert all(a.live_peers() == {b.peer_id for b in rest} - {a.peer_id} for a in rest)

        cut.host.heal()
        wait_until(lambda: everyone_hears_everyone(agents), 90, "the healed agent to be heard again")


def test_agents_find_each_other_from_bootstrap_addresses_alone(tmp_path: Path) -> None:
    def bootstrap_to_first(host: Host, earlier: list[NsAgent]) -> dict[str, Any]:
        return {"mdns": False, "dht": False, "bootstrap": [address(earlier[0])] if earlier else []}

    with cluster(tmp_path, bootstrap_to_first) as (lan, agents):
        wait_until(lambda: everyone_hears_everyone(agents), 90, "every agent to hear every other through the first")
        hub = agents[0]
        # Without mDNS or the DHT nobody learns another's address: all gossip goes through the hub.
        for leaf in agents[1:]:
            assert leaf.connected() == {hub.peer_id}


def test_agents_that_know_only_one_peer_find_the_rest_through_the_dht(tmp_path: Path) -> None:
    def bootstrap_to_first(host: Host, earlier: list[NsAgent]) -> dict[str, Any]:
        return {"mdns": False, "bootstrap": [address(earlier[0])] if earlier else []}

    with cluster(tmp_path, bootstrap_to_first) as (lan, agents):
        ids = {a.peer_id for a in agents}
        # Direct connections to everyone, where bootstrap alone gives only the hub (above).
        wait_until(
            lambda: all(a.connected() >= ids - {a.peer_id} for a in agents), 90, "every agent connected to every other"
        )
        wait_until(lambda: everyone_hears_everyone(agents), 60, "every agent to hear every other")
