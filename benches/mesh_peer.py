"""One mesh node of the propagation benchmark, in a process of its own, driven over stdin.

    python -m benches.mesh_peer --data DIR --port N [--bootstrap ADDR ...] [--max-rate R]

It is a real `MeshNode` (Noise, yamux, gossipsub, every message through the Rust core's
gate); it prints `READY <multiaddr>` once listening, then takes one command a line:

    RATE <msgs/s> <count>   publish `count` meta messages at that pace; prints `SENT <n> <seconds>`
    MESH                    prints `MESH <connected peers> <peers in the topic's mesh>`
    REPORT                  prints `REPORT <json>` (latency of each message received since the
                            last REPORT, in ms, by origin) and starts counting afresh
    QUIT

Each message carries its send time (`time.time_ns()`); all nodes share one clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bzzz._core import Envelope
from bzzz.mesh.identity import load_or_create
from bzzz.mesh.node import MeshNode
from bzzz.mesh.settings import MeshSettings

TOPIC = "bzzz/meta/issue/bench/mesh/1"


UNGUARDED = {"sender_rate": 1e6, "sender_burst": 1_000_000, "max_discussion_messages": 4_000_000_000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--max-rate", type=float, default=200.0)
    args = parser.parse_args()
    settings = MeshSettings.model_validate(
        {
            "listen": [f"/ip4/127.0.0.1/tcp/{args.port}"],
            "discovery": {"mdns": False, "dht": False, "bootstrap": args.bootstrap, "redial_initial_s": 0.2},
            # The discussion safeguards would (rightly) stop one sender's hundreds of messages a
            # second on one topic; this benchmark measures the mesh itself, so they are opened wide.
            "gossip": {
                "max_publish_rate": args.max_rate,
                "safeguards": UNGUARDED,
                **json.loads(os.environ.get("BENCH_GOSSIP", "{}")),
            },
            "capabilities": {"ollama_endpoints": [], "tools": []},
            "capabilities_interval_s": 5.0,
        }
    )
    received: list[tuple[str, float]] = []

    def on_envelope(envelope: Envelope) -> None:
        if envelope.topic == TOPIC:
            sent_ns = envelope.payload["content"]["parameters"]["sent_ns"]
            received.append((envelope.node_id, (time.time_ns() - sent_ns) / 1e6))

    node = MeshNode(load_or_create(Path(args.data)), settings, node_id=Path(args.data).name, on_envelope=on_envelope)

    async def publish_at(rate: float, count: int) -> None:
        started = time.monotonic()
        for i in range(count):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await trio.sleep(delay)
            payload = {
                "issue_id": "bench/mesh#1",
                "parent_id": None,
                "content": {"query_type": "plan", "text": "x" * 200, "parameters": {"sent_ns": time.time_ns()}},
            }
            await node.publish("meta_msg", TOPIC, payload, ttl=60)
        print("SENT", count, round(time.monotonic() - started, 4), flush=True)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(node.run)
            await node.join(TOPIC)
            print("READY", node.listen_addrs[0], flush=True)
            while True:
                line = (await trio.to_thread.run_sync(sys.stdin.readline)).split()
                if not line or line[0] == "QUIT":
                    nursery.cancel_scope.cancel()
                    return
                if line[0] == "RATE":
                    nursery.start_soon(publish_at, float(line[1]), int(line[2]))
                elif line[0] == "MESH":
                    status = node.status()
                    router: Any = node._require_pubsub().router
                    print("MESH", len(status["connected"]), len(router.mesh.get(TOPIC, ())), flush=True)
                elif line[0] == "REPORT":
                    by_origin: dict[str, list[float]] = {}
                    for origin, ms in received:
                        by_origin.setdefault(origin, []).append(round(ms, 3))
                    received.clear()
                    metrics = node.metrics.snapshot()
                    print(
                        "REPORT",
                        json.dumps(
                            {
                                "latency_ms": by_origin,
                                "dropped": metrics["bzzz_mesh_dropped_total"],
                                "rejected": metrics["bzzz_mesh_rejected_total"],
                            }
                        ),
                        flush=True,
                    )

    trio.run(run)


if __name__ == "__main__":
    main()
