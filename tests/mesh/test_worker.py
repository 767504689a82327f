"""The mesh worker under a real supervisor: agents on 127.0.0.1 that find each other, keep
a peer table, gossip through the bus, and keep their peer id when the worker is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel

from bzzz._core import verify_envelope
from bzzz.bus import ServiceError, Subscriber
from bzzz.mesh.client import PEERS_TOPIC, MeshClient, PeerEvent, gossip_bus_topic
from bzzz.mesh.settings import MeshSettings
from tests.agents import Agent, free_port, mesh_worker, toml_config, wait_until

META_TOPIC = "bzzz/meta/issue/acme/widgets/12"


def mesh_status(agent: Agent) -> dict[str, Any]:
    return MeshClient(agent.run_dir, timeout_s=2.0).status()


def start_pair(start_agent: Callable[..., Agent], **settings: Any) -> tuple[Agent, Agent]:
    # A fixed port for the first agent, as in a real cluster: its address outlives a restart.
    first = start_agent(
        {"log": {"module": "bzzz.workers.log"}, "mesh": mesh_worker(f"/ip4/127.0.0.1/tcp/{free_port()}", **settings)},
        name="first",
    )
    first.wait_running("mesh", timeout=30)
    first_addr = wait_until(lambda: mesh_status(first)["listen"], 30, "the first agent listening")[0]
    second = start_agent(
        {"log": {"module": "bzzz.workers.log"}, "mesh": mesh_worker(bootstrap=[first_addr], **settings)}, name="second"
    )
    second.wait_running("mesh", timeout=30)
    return first, second


def live_peer_ids(agent: Agent) -> set[str]:
    return {p["peer_id"] for p in MeshClient(agent.run_dir).peers()}


def test_two_agents_see_each_others_capabilities_in_their_peer_tables(start_agent) -> None:
    first, second = start_pair(start_agent)
    first_id, second_id = mesh_status(first)["peer_id"], mesh_status(second)["peer_id"]
    wait_until(lambda: live_peer_ids(first) == {second_id}, 30, "the first agent to hear the second")
    wait_until(lambda: live_peer_ids(second) == {first_id}, 30, "the second agent to hear the first")
    peer = MeshClient(second.run_dir).peers()[0]["capabilities"]
    assert peer["peer_id"] == first_id
    assert "sh" in peer["tools"]
    # The log key of the first agent's own signed log, so peers can replicate it by key.
    from bzzz._core import MerkleLog

    with MerkleLog.open(first.data_dir / "log" / "hypercore") as log:
        assert wait_until(
            lambda: MeshClient(second.run_dir).peers()[0]["capabilities"]["log_key"] == log.key.hex(),
            20,
            "the log key to be advertised",
        )

    # The operator's view of the same table.
    shown = bzzz_cli("mesh", "peers", "--run-dir", str(second.run_dir))
    assert shown.returncode == 0 and first_id[-12:] in shown.stdout and "sh" in shown.stdout
    counters = bzzz_cli("mesh", "status", "--run-dir", str(second.run_dir))
    assert counters.returncode == 0 and "rejected" in counters.stdout and second_id in counters.stdout


def test_an_agent_advertises_whom_it_is_connected_to_and_its_logs_length(start_agent) -> None:
    from bzzz._core import MerkleLog
    from bzzz.log.service import LogClient

    first, second = start_pair(start_agent)
    first_id, second_id = mesh_status(first)["peer_id"], mesh_status(second)["peer_id"]
    with LogClient(first.run_dir, sender="test", timeout_s=30.0) as client:
        client.append([b"one", b"two", b"three"])
    with MerkleLog.open(first.data_dir / "log" / "hypercore") as log:
        written = log.length

    def advertised() -> dict[str, Any] | None:
        peers = MeshClient(second.run_dir).peers()
        caps = peers[0]["capabilities"] if peers else {}
        return caps if caps.get("connected") == [second_id] and caps.get("log_length", 0) >= written else None

    wait_until(advertised, 30, "the first agent's connections and log length advertised")
    wait_until(
        lambda: MeshClient(first.run_dir).peers()[0]["capabilities"].get("connected") == [first_id],
        30,
        "the second agent's connections advertised",
    )


def bzzz_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bzzz.cli.main", *args], capture_output=True, text=True, timeout=60)


def test_the_cli_says_so_when_no_mesh_worker_answers(tmp_path: Path) -> None:
    shown = bzzz_cli("mesh", "peers", "--run-dir", str(tmp_path))
    assert shown.returncode == 1 and "no mesh worker is running" in shown.stderr


def test_a_change_is_broadcast_at_once_and_announced_on_the_bus(start_agent) -> None:
    # A 30-second period: what arrives within seconds was sent because something changed.
    first, second = start_pair(start_agent, capabilities_interval_s=30)
    first_id = mesh_status(first)["peer_id"]
    wait_until(lambda: live_peer_ids(second) == {first_id}, 30, "the second agent to hear the first")
    with Subscriber(second.run_dir, "test") as events:
        events.subscribe(PEERS_TOPIC)
        time.sleep(0.5)  # the subscription reaches the proxy
        MeshClient(first.run_dir).set_tasks(2, 4)

        def updated() -> Any:
            got = events.recv(1.0)
            return got and msgspec.json.decode(got[1].body, type=PeerEvent)

        event = wait_until(updated, 20, "the update on the second agent's bus")
    assert (event.kind, event.peer_id) == ("updated", first_id)
    caps = MeshClient(second.run_dir).peers()[0]["capabilities"]
    assert (caps["active_tasks"], caps["max_tasks"]) == (2, 4)


def test_gossip_published_by_one_agent_reaches_the_other_agents_bus(start_agent) -> None:
    first, second = start_pair(start_agent)
    wait_until(lambda: live_peer_ids(first) and live_peer_ids(second), 30, "the agents to hear each other")
    MeshClient(second.run_dir).join(META_TOPIC)
    MeshClient(first.run_dir).join(META_TOPIC)
    with Subscriber(second.run_dir, "test") as events:
        events.subscribe(gossip_bus_topic(META_TOPIC))
        time.sleep(0.5)  # the subscription travels to the bus proxy
        payload = {
            "issue_id": "acme/widgets#12",
            "parent_id": None,
            "content": {"query_type": "plan", "text": "fix the parser", "parameters": {}},
        }

        def arrived() -> Any:
            # Gossip needs the topic's mesh to form (a heartbeat or two): publish until it arrives.
            msg_id = MeshClient(first.run_dir).publish("meta_msg", META_TOPIC, payload)
            deadline = time.monotonic() + 1.0
            while (got := events.recv(max(0.0, deadline - time.monotonic()))) is not None:
                topic, message = got
                envelope = verify_envelope(message.body)
                if envelope.msg_id == msg_id:
                    return envelope
            return None

        envelope = wait_until(arrived, 30, "the message on the second agent's bus")
    assert envelope.payload == payload and envelope.node_id == "test-agent"
    assert envelope.sender.hex() != "" and envelope.topic == META_TOPIC


def test_a_payload_the_core_would_refuse_is_refused_before_it_is_sent(start_agent) -> None:
    agent = start_agent({"mesh": mesh_worker()}, name="alone")
    agent.wait_running("mesh", timeout=30)
    client = MeshClient(agent.run_dir)
    try:
        client.publish("meta_msg", META_TOPIC, {"issue_id": "x", "content": "not an object"})
    except ServiceError as error:
        assert "schema" in str(error)
    else:
        raise AssertionError("a bad payload was published")


def test_a_killed_mesh_worker_comes_back_with_the_same_peer_id_and_is_heard_again(start_agent) -> None:
    first, second = start_pair(start_agent)
    first_id = mesh_status(first)["peer_id"]
    wait_until(lambda: live_peer_ids(second) == {first_id}, 30, "the second agent to hear the first")
    with Subscriber(second.run_dir, "test") as events:
        events.subscribe(PEERS_TOPIC)
        time.sleep(0.3)
        old_pid = first.worker("mesh")["pid"]
        os.kill(old_pid, signal.SIGKILL)
        first.wait_running("mesh", other_than=old_pid, timeout=30)
        assert wait_until(lambda: mesh_status(first)["peer_id"], 30, "the restarted worker") == first_id
        # The first bootstraps nobody: it is the second's redial (same address, same peer id)
        # that brings them together again.
        wait_until(lambda: first_id in live_peer_ids(second), 30, "the first agent heard again")


def test_the_settings_are_shown_with_their_sources_and_a_bad_one_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bzzz.toml"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}

    def bzzz(command: list[str], settings: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
        config.write_text(toml_config(tmp_path / "data", {"mesh": mesh_worker(**settings)}))
        return subprocess.run(
            [sys.executable, "-m", "bzzz.cli.main", *command, "--config", str(config)],
            capture_output=True,
            text=True,
            env={**clean, **env},
            timeout=60,
        )

    shown = bzzz(
        ["config", "show", "--json"], {"capabilities_interval_s": 3}, BZZZ_WORKERS__MESH__SETTINGS__GOSSIP__DEGREE="8"
    )
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert rows["workers.mesh.settings.capabilities_interval_s"] == {"value": 3.0, "source": f"file {config}"}
    assert rows["workers.mesh.settings.gossip.heartbeat_s"] == {"value": 1.0, "source": "default"}
    assert rows["workers.mesh.settings.metrics_port"] == {"value": None, "source": "default"}
    assert rows["workers.mesh.settings.gossip.degree"] == {
        "value": 8,
        "source": "env BZZZ_WORKERS__MESH__SETTINGS__GOSSIP__DEGREE",
    }

    for settings, says in [
        ({"capabilities_interval_s": -1}, "settings.capabilities_interval_s"),
        ({"discovery": {"bootstrap": ["/ip4/10.0.0.1/tcp/4001"]}}, "/p2p/<peer id>"),
        ({"interval": 5}, "settings.interval: Extra inputs are not permitted"),
    ]:
        refused = bzzz(["agent", "run"], settings)
        assert refused.returncode == 2 and "workers.mesh: " in refused.stderr and says in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not (tmp_path / "data").exists(), "nothing started"

    # Started by hand, past the config's check, the worker refuses them too.
    env = {
        **clean,
        "BZZZ_WORKER": "mesh",
        "BZZZ_RUN_DIR": "/nonexistent",
        "BZZZ_DATA_DIR": "/nonexistent",
        "BZZZ_WORKER_SETTINGS": json.dumps({"discovery": {"bootstrap": ["/ip4/10.0.0.1/tcp/4001"]}}),
    }
    bad = subprocess.run(
        [sys.executable, "-m", "bzzz.workers.mesh"], capture_output=True, text=True, env=env, timeout=60
    )
    assert bad.returncode != 0 and "/p2p/<peer id>" in bad.stderr


def test_every_setting_of_the_mesh_worker_says_what_it_is_for() -> None:
    def undocumented(model: type[BaseModel], prefix: str = "") -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(prefix + name)
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                missing += undocumented(field.annotation, f"{prefix}{name}.")
        return missing

    assert undocumented(MeshSettings) == []
    assert "Prometheus" in str(MeshSettings.model_fields["metrics_port"].description)
