"""`bzzz monitor` against real agents (supervisor; log and mesh workers on 127.0.0.1): it lists
them with their log keys, follows their logs into verified replicas that catch up, shows what
they append live, shows an agent gone and back, and proves any entry on demand."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bzzz._core import MerkleLog, Proof
from bzzz.mesh.client import MeshClient
from bzzz.monitor.follower import check
from bzzz.paths import DataDir, merkle_dir
from tests.agents import wait_until
from tests.monitor.harness import (
    DEADLINE_S,
    Api,
    Events,
    address,
    append,
    log_key,
    log_length,
    monitor_for,
    peer_id,
    start_log_agent,
)


@pytest.fixture
def mesh(start_agent: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    alpha = start_log_agent(start_agent, "alpha")
    beta = start_log_agent(start_agent, "beta", [address(alpha)])
    monitor = monitor_for(tmp_path, [address(alpha)])
    api = Api(monitor)
    try:
        yield {"alpha": alpha, "beta": beta, "monitor": monitor, "api": api}
    finally:
        api.close()
        assert monitor.stop() == 0  # a clean stop: SIGTERM, every worker down, status 0


def test_agents_are_listed_with_their_log_keys_and_copies_that_catch_up(mesh: dict[str, Any]) -> None:
    api, alpha, beta = mesh["api"], mesh["alpha"], mesh["beta"]
    keys = {"alpha": log_key(alpha), "beta": log_key(beta)}

    def listed() -> dict[str, dict[str, Any]] | None:
        rows = api.agents()
        ok = all(
            name in rows
            and rows[name]["live"]
            and rows[name]["log_key"] == key
            and rows[name]["replica_length"] >= 1
            and rows[name]["lag"] == rows[name]["log_length"] - rows[name]["replica_length"]
            for name, key in keys.items()
        )
        return rows if ok else None

    rows = wait_until(listed, DEADLINE_S, "both agents listed with their keys and copies")
    assert rows["alpha"]["peer_id"] == peer_id(alpha) and rows["beta"]["tools"] == ["git", "sh"]
    assert rows["alpha"]["max_tasks"] == 1 and rows["alpha"]["version"]

    # Appending makes the writer advertise a longer log, and the monitor's copy follows it.
    append(alpha, *[f"entry {n}".encode() for n in range(300)])
    written = log_length(alpha)
    wait_until(
        lambda: (row := api.agents()["alpha"])["log_length"] >= written and row["replica_length"] >= written,
        DEADLINE_S,
        "alpha's advertised length and the copy catch up",
    )
    copy = merkle_dir(DataDir(mesh["monitor"].data_dir).replica(keys["alpha"]))
    with MerkleLog.open(copy) as replica, MerkleLog.open(merkle_dir(DataDir(alpha.data_dir).log)) as own:
        assert replica.length >= written and replica.get(written - 1) == own.get(written - 1)


def test_topology_shows_who_is_connected_to_whom_and_the_monitor(mesh: dict[str, Any]) -> None:
    api, alpha, beta = mesh["api"], mesh["alpha"], mesh["beta"]
    a, b = peer_id(alpha), peer_id(beta)
    me = str(MeshClient(mesh["monitor"].run_dir).status()["peer_id"])

    def drawn() -> dict[str, Any] | None:
        topology = api.get("/api/topology")
        edges = {tuple(e) for e in topology["edges"]}
        want = {tuple(sorted((a, b))), tuple(sorted((a, me)))}
        return topology if want <= edges else None

    topology = wait_until(drawn, DEADLINE_S, "the alpha-beta and monitor-alpha edges")
    nodes = {n["peer_id"]: n for n in topology["nodes"]}
    assert nodes[me]["monitor"] and not nodes[a]["monitor"] and nodes[a]["node_id"] == "alpha"
    assert all(n["live"] for n in nodes.values())
    # The agents advertise their connections (and their log's length) in their capabilities.
    advertised = {p["peer_id"]: p["capabilities"] for p in MeshClient(mesh["monitor"].run_dir).peers()}
    assert b in advertised[a]["connected"] or a in advertised[b]["connected"]
    assert isinstance(advertised[a]["log_length"], int) and advertised[a]["log_length"] >= 1


def test_an_append_shows_up_in_the_api_and_as_a_live_event(mesh: dict[str, Any]) -> None:
    api, alpha = mesh["api"], mesh["alpha"]
    key = log_key(alpha)
    wait_until(lambda: api.agents().get("alpha", {}).get("replica_length", 0) >= 1, DEADLINE_S, "alpha followed")
    events = Events(mesh["monitor"].url)
    try:
        claim = {"type": "claim_won", "ts": 1_700_000_000_000, "node_id": "alpha", "agent": "alpha"}
        claim.update(repo="acme/widgets", issue=7, winner="alpha", contenders=["alpha", "beta"])
        plan = {
            "type": "hmmm_message",
            "ts": 1_700_000_000_500,
            "node_id": "alpha",
            "direction": "sent",
            "message_type": "meta_msg",
            "topic": "bzzz/meta/issue/acme/widgets/7",
            "msg_id": "c" * 32,
            "from_node": "alpha",
            "hop_count": 0,
            "sent_ts": 1_700_000_000_500,
            "issue_id": "acme/widgets#7",
            "parent_id": None,
            "query_type": "plan",
            "text": "Plan: run make",
            "parameters": {},
        }
        first = append(alpha, json.dumps(claim).encode(), json.dumps(plan).encode(), b"a plain line")

        wait_until(
            lambda: any(e["key"] == key and e["length"] >= first + 3 for e in events.of("log")),
            DEADLINE_S,
            "a live `log` event with the new length",
        )
        page = api.get(f"/api/logs/{key}", start=first, limit=3)
        assert page["key"] == key and page["node_id"] == "alpha" and page["length"] >= first + 3
        assert [(e["index"], e["type"]) for e in page["entries"]] == [
            (first, "claim_won"),
            (first + 1, "hmmm_message"),
            (first + 2, "text"),
        ]
        assert page["entries"][2]["text"] == "a plain line" and not page["entries"][2]["truncated"]

        task = wait_until(
            lambda: next((t for t in events.of("task") if t["task"] == "acme/widgets#7"), None),
            DEADLINE_S,
            "a live `task` event",
        )
        assert task["state"] in ("claimed", "discussing") and task["claimant"] == "alpha"
        (listed,) = [t for t in api.get("/api/tasks")["tasks"] if t["task"] == "acme/widgets#7"]
        assert listed["state"] == "discussing"
        assert [(e["kind"], e["log_key"], e["index"]) for e in listed["events"]] == [
            ("claim_won", key, first),
            ("hmmm_message", key, first + 1),
        ]
        wait_until(lambda: events.of("discussion"), DEADLINE_S, "a live `discussion` event")
        (discussion,) = [d for d in api.get("/api/discussions")["discussions"] if d["task"] == "acme/widgets#7"]
        (message,) = discussion["messages"]
        assert message["verified"] and (message["log_key"], message["index"]) == (key, first + 1)
        assert message["text"] == "Plan: run make" and message["node_id"] == "alpha"
    finally:
        events.close()


def test_an_agent_shut_down_is_shown_gone_and_live_again_after_it_restarts(
    mesh: dict[str, Any], start_agent: Any
) -> None:
    api, alpha, beta = mesh["api"], mesh["alpha"], mesh["beta"]
    wait_until(lambda: api.agents().get("beta", {}).get("live"), DEADLINE_S, "beta live")
    port = int(address(beta).split("/tcp/")[1].split("/")[0])
    beta_peer = peer_id(beta)
    events = Events(mesh["monitor"].url)
    try:
        beta.process.send_signal(signal.SIGTERM)
        assert beta.process.wait(30) == 0
        wait_until(lambda: api.agents()["beta"]["live"] is False, DEADLINE_S, "beta shown gone")
        nodes = {n["peer_id"]: n["live"] for n in api.get("/api/topology")["nodes"]}
        assert nodes[beta_peer] is False and nodes[peer_id(alpha)] is True
        assert any(a["node_id"] == "beta" and a["live"] is False for a in events.of("agents"))

        again = start_log_agent(start_agent, "beta", [address(alpha)], port=port)  # same data dir: same peer id
        assert peer_id(again) == beta_peer
        wait_until(lambda: api.agents()["beta"]["live"] is True, DEADLINE_S, "beta shown live again")
        assert any(a["node_id"] == "beta" and a["live"] is True for a in events.of("agents")[-5:])
    finally:
        events.close()


def test_the_proof_endpoint_proves_an_entry_against_the_writers_signed_head(mesh: dict[str, Any]) -> None:
    api, alpha = mesh["api"], mesh["alpha"]
    key = log_key(alpha)
    first = append(alpha, b"prove me")
    wait_until(lambda: api.agents().get("alpha", {}).get("replica_length", 0) > first, DEADLINE_S, "the entry copied")
    proof = api.get(f"/api/logs/{key}/{first}/proof")
    assert proof["verified"] is True and proof["key"] == key and proof["index"] == first
    assert proof["length"] > first and proof["value_size"] == len(b"prove me")
    with MerkleLog.open(merkle_dir(DataDir(alpha.data_dir).log)) as own:
        assert proof["public_key"] == own.public_key.hex()
    assert proof["signature"] and (proof["roots"] or proof["nodes"])

    # Positive control: the same check refuses the entry under another value, another head,
    # and another writer's key.
    with MerkleLog.open(merkle_dir(DataDir(mesh["monitor"].data_dir).replica(key))) as replica:
        made = replica.proof(first)
        public_key, compat = replica.public_key, replica.compat
    assert check(made, key, public_key, compat)["verified"] is True

    def altered(**change: Any) -> Proof:
        fields = dict(
            index=made.index,
            value=made.value,
            nodes=made.nodes,
            length=made.length,
            roots=made.roots,
            signature=made.signature,
            fork=made.fork,
            manifest=made.manifest,
        )
        return Proof(**{**fields, **change})

    assert check(altered(value=b"prove you"), key, public_key, compat)["verified"] is False
    bad_signature = made.signature[:-40] + bytes(40 - 1) + b"\x01"
    assert check(altered(signature=bad_signature), key, public_key, compat)["verified"] is False
    other = log_key(mesh["beta"])
    with MerkleLog.open(merkle_dir(DataDir(mesh["beta"].data_dir).log)) as beta_log:
        assert check(made, other, beta_log.public_key, beta_log.compat)["verified"] is False

    assert api.http.get(f"/api/logs/{key}/999999999/proof").status_code == 404
    assert api.http.get("/api/logs/nothex/0/proof").status_code == 400


def test_the_page_is_served_with_a_csp_and_nosniff_and_bad_input_is_one_clear_error(mesh: dict[str, Any]) -> None:
    api = mesh["api"]
    page = api.http.get("/")
    assert page.status_code == 200 and 'data-tab="topology"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    script = api.http.get("/static/app.js")
    assert script.status_code == 200 and "innerHTML" not in script.text
    assert "default-src 'self'" in script.headers["content-security-policy"]
    bad = api.http.get("/api/tasks", params={"limit": "lots"})
    assert bad.status_code == 400 and bad.json() == {"error": "limit must be a whole number, got 'lots'"}
    assert api.http.get(f"/api/logs/{'e' * 64}").status_code == 404  # a log nobody advertises
    metrics = api.http.get("/metrics").text
    for series in (
        "bzzz_monitor_agents",
        "bzzz_monitor_followed_logs",
        "bzzz_monitor_indexed_entries_total",
        "bzzz_monitor_sse_clients",
        "bzzz_monitor_events_sent_total",
    ):
        assert series in metrics


def test_bzzz_monitor_says_where_its_page_is_and_refuses_a_bad_address(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "monitor", "--http", "nowhere", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "expected HOST:PORT" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [sys.executable, "-m", "bzzz.cli.main", "monitor", "--data-dir", str(tmp_path)]
            + ["--http", f"127.0.0.1:{taken.getsockname()[1]}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert busy.returncode == 2 and busy.stderr.count("\n") == 1
    assert "cannot serve the page on 127.0.0.1:" in busy.stderr and "in use" in busy.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "bzzz.cli.main", "monitor", "--http", "127.0.0.1:0", "--data-dir", str(tmp_path)]
        + ["--listen", "/ip4/127.0.0.1/tcp/0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("monitor at http://127.0.0.1:") and line.endswith("/")
        assert httpx.get(line.removeprefix("monitor at "), timeout=30).status_code == 200
        addr = (DataDir(tmp_path).run / "monitor.addr").read_text()
        assert line == f"monitor at http://{addr}/"
    finally:
        process.terminate()
        assert process.wait(30) == 0
