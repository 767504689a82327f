"""Log replication between two agents on 127.0.0.1: 1 KiB entries, each proven on arrival and the
whole tree checked against the writer's signature (`bzzz.log.replica`), over py-libp2p streams."""

from __future__ import annotations

from typing import Any

from benches.rates import FIGURES
from bzzz.mesh.client import MeshClient
from tests.agents import wait_until
from tests.log.test_replication import ENTRY, address, agent_with_log, key_of, replicate, write

PER_ROUND = 10_000


def test_replication_throughput(start_agent, benchmark: Any) -> None:
    writer = agent_with_log(start_agent, "writer")
    reader = agent_with_log(start_agent, "reader", [address(writer)])
    key = key_of(writer)
    wait_until(lambda: MeshClient(reader.run_dir).peers(), 30, "the reader hears the writer")
    lengths: list[int] = []

    def more() -> None:  # not timed: the writer appends what the next round copies
        write(writer, PER_ROUND)

    def copy() -> None:
        job = replicate(reader, key)
        assert job["state"] == "done", job
        lengths.append(job["length"])

    benchmark.group = "replication: 1 KiB entries between two agents"
    benchmark.pedantic(copy, setup=more, rounds=3, iterations=1)
    assert lengths[-1] >= 3 * PER_ROUND
    fastest = benchmark.stats.stats.min
    rate = PER_ROUND / fastest
    FIGURES["log replication, 1 KiB entries, two agents on 127.0.0.1, every entry verified"] = (
        f"{rate:,.0f} entries/s, {rate * ENTRY / 1e6:.1f} MB/s (10,000 entries in {fastest:.2f} s, fastest of 3)"
    )
