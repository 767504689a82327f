"""Bus throughput: signed envelopes from a publisher process through the proxy to a subscriber,
beside raw pyzmq ipc PUSH/PULL of the same bytes between two processes, in the same run.

The bus does more per message than raw PUSH/PULL: a BusMessage around each envelope
(sender, id, timestamp, sequence number) encoded and decoded with msgspec, topic
filtering, and a hop through the proxy thread (what the supervisor runs). Each round
sends COUNT messages; the clock runs from "go" to the subscriber holding the last one.
Events are best effort: a subscriber that falls more than the proxy's HWM behind loses
messages by design (counted; tests/bus/test_events.py), and on a small shared machine
a burst of 20,000 can do that. So that every round is complete and the figure is a
throughput, not a drop rate, the bus's queues (proxy and subscriber HWM) hold one
whole round, and the publisher waits for room (`timeout_s`) rather than dropping.
Raw PUSH/PULL keeps ZeroMQ's defaults (HWM 1,000; PUSH blocks when full, never drops).
Every round checks that all COUNT arrived and none went missing.

This file is also the peer process: `python benches/bench_bus.py publish|push RUN_DIR TS_MS`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

GROUP = "bus: envelopes through the proxy"
TOPIC = "bzzz/capabilities"
COUNT = 20_000
DISTINCT = 100  # envelopes, sent round-robin
NOW = int(time.time() * 1000)


def envelopes(ts_ms: int) -> list[bytes]:
    """`DISTINCT` capabilities broadcasts (about 700 bytes each, as in bench_envelope.py),
    byte for byte the same in both processes: fixed keys, ids and time (ed25519 is deterministic)."""
    from bzzz import KeyPair, sign_envelope

    wire = []
    for i in range(DISTINCT):
        sender = KeyPair.from_seed(bytes([i % 20 + 1]) * 32)
        payload = {
            "node_id": f"agent-{i % 20}",
            "peer_id": "12D3KooW" + "x" * 44,
            "models": ["gemma3:270m", "qwen2.5-coder:7b"],
            "tools": ["git", "pytest", "ruff"],
            "load_permille": 250,
            "active_tasks": 1,
            "max_tasks": 4,
            "log_key": sender.public_key.hex(),
            "version": "0.1.0",
        }
        wire.append(
            sign_envelope(
                sender.secret_key,
                "capabilities",
                TOPIC,
                payload["node_id"],
                payload,
                msg_id=f"{i:032x}",
                seq=i,
                ts_ms=ts_ms,
            )
        )
    return wire


# ---- the peer process: waits for "go" lines on stdin, sends COUNT messages for each ----


def peer(role: str, run_dir: str, ts_ms: int) -> None:
    from bzzz.bus import Publisher

    wire = envelopes(ts_ms)
    if role == "publish":
        publisher = Publisher(run_dir, "bench")
        assert publisher.wait_for_subscriber(TOPIC, 10), "no subscriber"

        def send(i: int) -> None:
            if not publisher.publish(TOPIC, wire[i % DISTINCT], timeout_s=10):
                raise SystemExit("the proxy took nothing for 10 s")
    else:
        push = zmq.Context.instance().socket(zmq.PUSH)
        push.connect(f"ipc://{run_dir}/raw.sock")

        def send(i: int) -> None:
            push.send(wire[i % DISTINCT])

    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        for i in range(COUNT):
            send(i)
        print("sent", flush=True)


class Peer:
    def __init__(self, role: str, run_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, role, str(run_dir), str(NOW)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def sent(self) -> None:
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "sent"

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


# ---- the receiving side, in this process ----


@pytest.fixture(scope="module")
def run_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bzzz-bench-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class BusSide:
    def __init__(self, run_dir: Path) -> None:
        from bzzz.bus import BusProxy, Subscriber

        self.proxy = BusProxy(run_dir, hwm=COUNT).start()
        self.subscriber = Subscriber(run_dir, "bzzz/", hwm=COUNT)
        self.peer = Peer("publish", run_dir)

    def round(self) -> list[bytes]:
        """One round; the bodies received, in order."""
        self.peer.go()
        bodies = []
        for _ in range(COUNT):
            item = self.subscriber.recv(10)
            assert item is not None, f"only {len(bodies)} of {COUNT} arrived"
            bodies.append(item[1].body)
        self.peer.sent()
        assert self.subscriber.missed == 0
        return bodies

    def close(self) -> None:
        self.peer.close()
        self.subscriber.close()
        self.proxy.stop()


class RawSide:
    def __init__(self, run_dir: Path) -> None:
        self.pull = zmq.Context.instance().socket(zmq.PULL)
        self.pull.setsockopt(zmq.RCVTIMEO, 10_000)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.bind(f"ipc://{run_dir}/raw.sock")
        self.peer = Peer("push", run_dir)

    def round(self) -> list[bytes]:
        self.peer.go()
        bodies = [self.pull.recv() for _ in range(COUNT)]
        self.peer.sent()
        return bodies

    def close(self) -> None:
        self.peer.close()
        self.pull.close()


@pytest.fixture(scope="module")
def bus(run_dir: Path) -> Iterator[BusSide]:
    side = BusSide(run_dir)
    yield side
    side.close()


@pytest.fixture(scope="module")
def raw(run_dir: Path) -> Iterator[RawSide]:
    side = RawSide(run_dir)
    yield side
    side.close()


def test_bus_and_raw_push_pull_deliver_every_envelope_intact_before_timing(bus: BusSide, raw: RawSide) -> None:
    from bzzz import Gate

    sent = envelopes(NOW)
    expected = [sent[i % DISTINCT] for i in range(COUNT)]
    assert 690 <= len(sent[0]) <= 720, "about 700-byte signed envelopes"
    assert bus.round() == expected
    assert raw.round() == expected
    gate = Gate()
    assert all(gate.admit(body, NOW) for body in bus.round()[:DISTINCT]), "still signed and valid on arrival"


@pytest.mark.benchmark(group=GROUP)
def test_bus_envelopes_from_a_publisher_process_through_the_proxy_to_a_subscriber(
    benchmark, bus: BusSide, record_rate
) -> None:
    benchmark.pedantic(lambda: len(bus.round()), rounds=10, iterations=1, warmup_rounds=1)
    record_rate(GROUP, "bus", benchmark, COUNT)


@pytest.mark.benchmark(group=GROUP)
def test_raw_pyzmq_ipc_push_pull_of_the_same_bytes(benchmark, raw: RawSide, record_rate) -> None:
    benchmark.pedantic(lambda: len(raw.round()), rounds=10, iterations=1, warmup_rounds=1)
    record_rate(GROUP, "raw-push-pull", benchmark, COUNT)


if __name__ == "__main__":
    peer(sys.argv[1], sys.argv[2], int(sys.argv[3]))
