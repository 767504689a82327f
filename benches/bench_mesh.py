"""Gossip propagation across 10 agents on 127.0.0.1: latency at 50 msg/s mesh-wide, and the
highest rate one node sustains.

Each agent is a real mesh node in a process of its own (`benches/mesh_peer.py`): Noise,
yamux, gossipsub, and every message through the Rust core's gate. They are wired as a
cluster would be with bootstrap addresses only: each node dials up to 3 earlier ones
(seeded), and gossipsub builds its mesh over that. Latency is from the publisher's
`time.time_ns()` before signing to the receiver's gate letting it through, over every
(message, receiver) pair; a message late because of a backlog counts with its lateness.
Figures are printed by CI (see conftest.py); target: p99 <= 100 ms at 50 msg/s.

Ten Python nodes on two shared cores are CPU-bound well below 50 msg/s (py-libp2p spends
several milliseconds of CPU per message per node; the figure is printed), so beside the
target figure the benchmark prints the latency at 20 msg/s, the CPU per message, the
highest rate one node sustains, and the same scenario run by go-libp2p peers.
"""

from __future__ import annotations

import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from benches.rates import CEILINGS, FIGURES
from tests.interop.go_peer import GoNotFound, GoPeer, GoPeerError, build_go_peer

NODES = 10
MESH_RATE = 50.0  # messages per second, all nodes together
MESH_SECONDS = 10.0
TARGET_P99_MS = 100.0
RATE_STEPS = (10, 20, 50, 100, 200, 400)
STEP_SECONDS = 3.0
GO_TOPIC = "bench"
LIGHT_RATE = 20.0  # what 2 shared cores carry for 10 py-libp2p nodes, for the latency without a backlog


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [int(s.getsockname()[1]) for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Peer:
    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        self.addr = self.expect("READY")[0]

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, word: str, timeout_s: float = 60.0) -> list[str]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"peer exited ({self.process.poll()}) before {word}")
            parts = line.split(maxsplit=1 if word == "REPORT" else -1)
            if parts and parts[0] == word:
                return parts[1:]
        raise TimeoutError(word)

    def close(self) -> None:
        try:
            self.send("QUIT")
            self.process.wait(10)
        except Exception:
            self.process.kill()
            self.process.wait()


def start_cluster(root: Path) -> list[Peer]:
    ports = free_ports(NODES)
    wiring = random.Random(7)
    peers: list[Peer] = []
    for i in range(NODES):
        earlier = wiring.sample(range(i), min(3, i))
        argv = [
            sys.executable,
            "-m",
            "benches.mesh_peer",
            "--data",
            str(root / f"node{i}"),
            "--port",
            str(ports[i]),
            "--max-rate",
            "100000",
        ]
        for j in earlier:
            argv += ["--bootstrap", peers[j].addr]
        peers.append(Peer(argv))
    wait_for_mesh(peers)
    return peers


def wait_for_mesh(peers: list[Peer], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sizes = []
        for p in peers:
            p.send("MESH")
            sizes.append(int(p.expect("MESH")[1]))
        if min(sizes) >= 2 or (min(sizes) >= 1 and time.monotonic() > deadline - timeout_s / 2):
            time.sleep(2)  # a heartbeat or two more for the mesh to settle
            return
        time.sleep(1)
    raise TimeoutError("the gossip mesh did not form")


def reports(peers: list[Peer]) -> list[dict[str, Any]]:
    out = []
    for p in peers:
        p.send("REPORT")
        out.append(json.loads(p.expect("REPORT")[0]))
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def collect(peers: list[Peer], expected: int, quiet_s: float = 3.0, limit_s: float = 60.0) -> list[float]:
    """Latencies reported until all `expected` deliveries are in, or none came for `quiet_s`:
    a late message counts with its lateness instead of being cut off."""
    latencies: list[float] = []
    last_growth = time.monotonic()
    deadline = last_growth + limit_s
    while len(latencies) < expected and time.monotonic() < deadline:
        got = [ms for r in reports(peers) for lat in r["latency_ms"].values() for ms in lat]
        if got:
            latencies += got
            last_growth = time.monotonic()
        elif time.monotonic() - last_growth > quiet_s:
            break
        time.sleep(0.5)
    return latencies


def mesh_wide_latency(peers: list[Peer], rate: float = MESH_RATE) -> tuple[list[float], int]:
    """Every node publishes rate / NODES per second for MESH_SECONDS."""
    reports(peers)  # start counting now
    per_node = int(rate / NODES * MESH_SECONDS)
    for p in peers:
        p.send(f"RATE {rate / NODES} {per_node}")
    for p in peers:
        p.expect("SENT", MESH_SECONDS * 3)
    expected = per_node * NODES * (NODES - 1)
    return collect(peers, expected), expected


def highest_sustained_rate(peers: list[Peer]) -> tuple[float, list[str]]:
    """One node publishes at rising rates; sustained = sent on pace and >= 99% delivered."""
    sender, receivers = peers[0], peers[1:]
    best = 0.0
    notes = []
    for rate in RATE_STEPS:
        count = int(rate * STEP_SECONDS)
        reports(peers)
        sender.send(f"RATE {rate} {count}")
        took = float(sender.expect("SENT", STEP_SECONDS * 10)[1])
        time.sleep(STEP_SECONDS)  # as long again to deliver: a node that lags further does not sustain the rate
        delivered = sum(len(lat) for r in reports(receivers) for lat in r["latency_ms"].values())
        collect(peers, 10**9, quiet_s=2.0)  # let the backlog drain before the next step
        share = delivered / (count * len(receivers))
        on_pace = took <= STEP_SECONDS * 1.05
        notes.append(f"{rate}/s: sent in {took:.2f} s, delivered {share:.1%}")
        if share >= 0.99 and on_pace:
            best = float(rate)
        else:
            break
    return best, notes


def cpu_seconds(peers: list[Peer]) -> float:
    total = 0.0
    for p in peers:
        times = psutil.Process(p.process.pid).cpu_times()
        total += times.user + times.system
    return total


def go_mesh_wide_latency() -> tuple[list[float], int] | str:
    """The same wiring and load with go-libp2p peers (tests/interop/go), for comparison."""
    try:
        build_go_peer()
    except (GoNotFound, GoPeerError) as why:
        return f"not measured: {why}"
    wiring = random.Random(7)
    peers: list[GoPeer] = []
    try:
        for i in range(NODES):
            earlier = wiring.sample(range(i), min(3, i))
            peers.append(GoPeer.start(bytes([i + 1]) * 32, topics=[GO_TOPIC], connect=[peers[j].addr for j in earlier]))
        time.sleep(3)  # a few heartbeats to build the mesh
        per_node = int(MESH_RATE / NODES * MESH_SECONDS)
        threads = [threading.Thread(target=p.rate, args=(GO_TOPIC, MESH_RATE / NODES, per_node)) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(2)
        latencies = [
            (m.recv_ns - int.from_bytes(m.data[:8], "big")) / 1e6
            for p in peers
            for m in p.messages()
            if m.topic == GO_TOPIC
        ]
        return latencies, per_node * NODES * (NODES - 1)
    finally:
        for p in peers:
            p.close()


def test_propagation_across_10_agents(benchmark) -> None:
    root = Path(tempfile.mkdtemp(prefix="bzzz-bench-mesh-"))
    peers = start_cluster(root)
    try:
        cpu_before = cpu_seconds(peers)
        latencies, expected = mesh_wide_latency(peers)
        cpu_per_message_ms = 1000 * (cpu_seconds(peers) - cpu_before) / (MESH_RATE * MESH_SECONDS)
        got = len(latencies)
        collect(peers, 10**9, quiet_s=2.0)
        light, _ = mesh_wide_latency(peers, LIGHT_RATE)
        best, notes = highest_sustained_rate(peers)
        drops = reports(peers)
    finally:
        for p in peers:
            p.close()
    dropped = {k: sum(r["dropped"][k] for r in drops) for k in drops[0]["dropped"]}
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    benchmark.extra_info.update(
        {
            "p50_ms": p50,
            "p99_ms": p99,
            "delivered": got,
            "expected": expected,
            "max_rate_per_node": best,
            "steps": notes,
        }
    )
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    CEILINGS["mesh: propagation p50 at 50 msg/s (10 agents)"] = (p50, TARGET_P99_MS, "ms")
    CEILINGS["mesh: propagation p99 at 50 msg/s (10 agents)"] = (p99, TARGET_P99_MS, "ms")
    FIGURES["mesh: delivered at 50 msg/s (10 agents)"] = (
        f"{got}/{expected} (message, receiver) pairs; dropped {dropped}"
    )
    FIGURES["mesh: highest sustained rate from one node (py-libp2p)"] = f"{best:.0f} msg/s ({'; '.join(notes)})"
    # Late is measured above; lost would be a bug (every drop place is counted).
    go = go_mesh_wide_latency()
    if isinstance(go, str):
        FIGURES["mesh: go-libp2p, same scenario"] = go
    else:
        go_latencies, go_expected = go
        FIGURES["mesh: go-libp2p, same scenario"] = (
            f"p50 {statistics.median(go_latencies):.2f} ms, p99 {percentile(go_latencies, 0.99):.2f} ms, "
            f"delivered {len(go_latencies)}/{go_expected}"
        )
    FIGURES[f"mesh: propagation at {LIGHT_RATE:.0f} msg/s (10 agents)"] = (
        f"p50 {statistics.median(light):.1f} ms, p99 {percentile(light, 0.99):.1f} ms"
    )
    FIGURES["mesh: CPU per message, all 10 nodes together"] = (
        f"{cpu_per_message_ms:.0f} ms (2 cores carry about {2000 / cpu_per_message_ms:.0f} msg/s mesh-wide)"
    )
    assert got >= 0.99 * expected, f"only {got} of {expected} deliveries; dropped {dropped}"
