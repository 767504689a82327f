"""A log of 100,000 entries, written by a real agent and replicated by the monitor: the API pages
through it (at most 500 entries a page), and indexing is incremental: each entry is indexed once,
and looks that find nothing new read nothing old."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bzzz.log.service import LogClient
from bzzz.monitor.follower import LogFollower
from tests.agents import wait_until
from tests.monitor.harness import DEADLINE_S, Api, address, append, log_key, log_length, monitor_for, start_log_agent

ENTRIES = 100_000


def indexed(api: Api) -> float:
    for line in api.http.get("/metrics").text.splitlines():
        if line.startswith("bzzz_monitor_indexed_entries_total "):
            return float(line.split()[1])
    return 0.0


def test_a_log_of_100000_entries_is_paged_and_indexed_once(start_agent: Any, tmp_path: Path) -> None:
    writer = start_log_agent(start_agent, "writer")
    key = log_key(writer)
    with LogClient(writer.run_dir, sender="test", timeout_s=60.0) as client:
        for first in range(0, ENTRIES, 500):
            client.append([f"entry {n}".encode() for n in range(first, first + 500)])
    written = log_length(writer)
    assert written >= ENTRIES

    with monitor_for(tmp_path, [address(writer)]) as monitor:
        api = Api(monitor)
        try:
            wait_until(
                lambda: api.agents().get("writer", {}).get("replica_length", 0) >= written and indexed(api) >= written,
                DEADLINE_S * 4,
                "100,000 entries copied and indexed",
            )
            assert indexed(api) == written  # each once

            middle = api.get(f"/api/logs/{key}", start=50_000, limit=500)
            assert middle["length"] >= written and len(middle["entries"]) == 500
            assert [e["index"] for e in middle["entries"]] == list(range(50_000, 50_500))
            first = int(middle["entries"][0]["text"].split()[1])  # after the log worker's own first entries
            assert [e["text"] for e in middle["entries"]] == [f"entry {n}" for n in range(first, first + 500)]
            assert len(api.get(f"/api/logs/{key}", start=0, limit=10_000)["entries"]) == 500  # a page is capped
            tail = api.get(f"/api/logs/{key}", start=written - 3, limit=500)["entries"]
            assert [e["index"] for e in tail] == [written - 3, written - 2, written - 1]
            assert api.get(f"/api/logs/{key}", start=written + 10)["entries"] == []

            # Nothing new: however many looks pass, nothing is indexed again.
            time.sleep(3)  # several polls (poll_s 0.5); nothing is asserted about their speed
            assert indexed(api) == written
            index = append(writer, b"one more")
            wait_until(lambda: indexed(api) >= index + 1, DEADLINE_S, "the new entry indexed")
            assert indexed(api) == index + 1
        finally:
            api.close()


def test_a_look_at_an_unchanged_replica_opens_nothing(start_agent: Any, tmp_path: Path) -> None:
    writer = start_log_agent(start_agent, "writer")
    key = log_key(writer)
    with monitor_for(tmp_path, [address(writer)]) as monitor:
        api = Api(monitor)
        try:
            wait_until(lambda: api.agents().get("writer", {}).get("replica_length", 0) >= 1, DEADLINE_S, "followed")
        finally:
            api.close()
        follower = LogFollower(monitor.data_dir, None)
        first = follower.changed(key)
        assert first is not None and first >= 1  # control: the first look reads the length
        assert follower.changed(key) is None  # the replica's files did not change: no open, no read
