"""A help request travels at most 3 hops: agents joined in a line, one at a time, each relaying
the request to the next as it arrives; the fourth relay is refused by the core, and the agent
beyond never hears of it, though it is the only one that could help."""

from __future__ import annotations

import threading
from typing import Any

from bzzz.bus import BusError
from bzzz.mesh.client import MeshClient
from tests.agents import Agent, free_port
from tests.executor.fake_ollama import fake_ollama
from tests.hmmm.cluster import entries, eventually, hmmm, messages, pause, workers

# Gossip offers a message it has seen to new peers for a few heartbeats (IHAVE); waiting this
# long before the next agent joins means it can only get the request from a relay.
GOSSIP_MEMORY_S = 7.0


def test_a_help_request_is_relayed_three_hops_and_dropped_at_the_fourth(start_agent) -> None:
    with fake_ollama(["gemma3:270m"], ["HELP: rebuild with `make -B`"]) as model:
        line: list[Agent] = []

        def join(name: str, **kwargs: Any) -> Agent:
            bootstrap = [MeshClient(line[-1].run_dir).status()["listen"][0]] if line else []
            agent = start_agent(workers(port=free_port(), bootstrap=bootstrap, **kwargs), name=name, node_id=name)
            agent.wait_running("hmmm", timeout=30)
            eventually(lambda: MeshClient(agent.run_dir).status()["listen"], "listening")
            line.append(agent)
            return agent

        a = join("a")
        b = join("b")
        eventually(lambda: len(MeshClient(a.run_dir).peers()) == 1, "a and b hear each other")
        answers: list[Any] = []

        def ask() -> None:
            try:
                answers.extend(hmmm(a).ask_help("acme/widgets#9", "the build fails", ["make"], ["make"], window_s=120))
            except BusError:
                pass  # the agents are stopped before the window ends: what matters is checked below

        threading.Thread(target=ask, daemon=True).start()

        def heard(agent: Agent) -> list[int]:
            return [m["hop_count"] for m in messages(agent, "received", message_type="task_help_request")]

        assert eventually(lambda: heard(b), "b hears the request") == [0]
        for name, hops in (("c", 1), ("d", 2), ("e", 3)):
            pause(GOSSIP_MEMORY_S)
            agent = join(name)
            assert eventually(lambda a=agent: heard(a), f"{name} hears the request") == [hops]
        pause(GOSSIP_MEMORY_S)
        f = join("f", tools=("git", "sh", "make"), ollama=model.url)  # the only one able to help
        e = line[4]
        dropped = eventually(lambda: [x for x in entries(e) if x["type"] == "help_dropped"], "e drops the request")
        assert dropped[0]["reason"] == "hops"
        pause(5)
        assert heard(f) == [] and answers == [] and model.requests == []
        # Each relay is journalled by the relay, signed by it, one hop further.
        for relay, hops in ((b, 1), (line[2], 2), (line[3], 3)):
            sent = messages(relay, "sent", message_type="task_help_request")
            assert hops in [m["hop_count"] for m in sent]
