"""Capability detection against a real `ollama serve` (`make test-ollama`; skipped where none
is built): what it lists is what detection finds and what the mesh worker advertises."""

from __future__ import annotations

import json
from collections.abc import Callable

from bzzz.capabilities import CapabilityConfig, detect, list_models
from bzzz.capabilities.advertised import path as advertised_path
from tests.agents import Agent, mesh_worker, wait_until
from tests.ollama import TINY, Server, listed


def test_list_models_reads_the_real_servers_tags(real_ollama: Server) -> None:
    models = list_models(real_ollama.url, timeout_s=30)
    assert TINY in models
    assert list(models) == listed(real_ollama)  # the client's view is the server's own


def test_detection_finds_the_real_servers_models_beside_a_dead_endpoint(real_ollama: Server) -> None:
    found = detect(CapabilityConfig(ollama_endpoints=[real_ollama.url, "http://127.0.0.1:9"], probe_timeout_s=30))
    live, dead = found.endpoints
    assert live.reachable and TINY in live.models and TINY in found.models
    assert not dead.reachable and dead.models == () and dead.error


def test_the_mesh_worker_advertises_the_real_servers_models(
    real_ollama: Server, start_agent: Callable[..., Agent]
) -> None:
    agent = start_agent(
        {
            "mesh": mesh_worker(
                capabilities={"ollama_endpoints": [real_ollama.url], "tools": ["sh"], "probe_timeout_s": 30}
            )
        }
    )
    where = advertised_path(agent.run_dir)

    def advertised() -> list[str]:
        return json.loads(where.read_text())["models"] if where.exists() else []

    assert TINY in wait_until(advertised, 60, "the mesh worker to advertise the real Ollama's models")
