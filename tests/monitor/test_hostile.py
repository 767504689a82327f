"""A hostile agent: its node id is HTML, its log holds entries of megabytes and entries of
`<script>` and `<img onerror>` text. The monitor's API hands all of it back verbatim but capped
(escaping is the page's job: the browser tests prove it), and the monitor's memory stays bounded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # psutil ships no type information

from bzzz.supervisor import ControlClient
from tests.agents import wait_until
from tests.monitor.harness import DEADLINE_S, Api, address, append, log_key, log_length, monitor_for, start_log_agent

HTML_NODE_ID = '<img src=x onerror="alert(1)">'
SCRIPT = "<script>alert('peer')</script>"
IMG = '<img src=x onerror="document.title=1">'
CAP = 2048  # MonitorSettings().text_max_bytes, the default


def monitor_rss(run_dir: Path) -> int:
    workers = ControlClient(run_dir, timeout_s=10).call("status")["workers"]
    pid = next(w["pid"] for w in workers if w["worker"] == "monitor")
    return int(psutil.Process(pid).memory_info().rss)


def test_hostile_text_comes_back_verbatim_and_capped_and_megabytes_are_not_kept(
    start_agent: Any, tmp_path: Path
) -> None:
    evil = start_log_agent(start_agent, "evil", node_id=HTML_NODE_ID)
    key = log_key(evil)
    with monitor_for(tmp_path, [address(evil)]) as monitor:
        api = Api(monitor)
        try:
            wait_until(
                lambda: api.agents().get(HTML_NODE_ID, {}).get("replica_length", 0) >= log_length(evil),
                DEADLINE_S,
                "the hostile agent listed and followed",
            )
            before = monitor_rss(monitor.run_dir)

            huge = json.dumps({"type": SCRIPT, "ts": 1, "text": IMG + "x" * 3_000_000}).encode()
            plan = {
                "type": "hmmm_message",
                "ts": 2,
                "node_id": HTML_NODE_ID,
                "direction": "sent",
                "message_type": "meta_msg",
                "topic": "bzzz/meta/issue/acme/widgets/1",
                "msg_id": "d" * 32,
                "from_node": HTML_NODE_ID,
                "hop_count": 0,
                "sent_ts": 2,
                "issue_id": "acme/widgets#1",
                "parent_id": None,
                "query_type": "plan",
                "text": SCRIPT + "y" * 10_000,
                "parameters": {},
            }
            first = append(evil, huge, SCRIPT.encode(), IMG.encode(), json.dumps(plan).encode())
            for _ in range(15):  # 45 MB more of them: none of it may stay in the monitor
                append(evil, huge)
            written = log_length(evil)
            wait_until(
                lambda: (
                    api.agents()[HTML_NODE_ID]["replica_length"] >= written
                    and float(_metric(api, "bzzz_monitor_indexed_entries_total")) >= written
                ),
                DEADLINE_S * 2,
                "every hostile entry copied and indexed",
            )

            (row,) = [a for a in api.get("/api/agents")["agents"] if a["log_key"] == key]
            assert row["node_id"] == HTML_NODE_ID and not row["node_id_truncated"]  # verbatim: not escaped here
            page = api.get(f"/api/logs/{key}", start=first, limit=4)
            big, script, img, message = page["entries"]
            assert big["size"] == len(huge) and big["truncated"] and len(big["text"].encode()) <= CAP
            assert big["type"] == SCRIPT and big["text"].startswith('{"type": "<script>')
            assert (script["text"], script["truncated"], img["text"]) == (SCRIPT, False, IMG)
            assert message["truncated"] and len(message["text"].encode()) <= CAP

            (discussion,) = api.get("/api/discussions")["discussions"]
            (said,) = discussion["messages"]
            assert said["node_id"] == HTML_NODE_ID and said["text"].startswith(SCRIPT)
            assert said["truncated"] and len(said["text"].encode()) <= CAP and said["verified"]

            # Sixteen 3 MB entries went through; the monitor kept none of them.
            after = monitor_rss(monitor.run_dir)
            assert after - before < 30 * 1024 * 1024, f"the monitor grew by {(after - before) >> 20} MiB"
        finally:
            api.close()


def _metric(api: Api, name: str) -> str:
    for line in api.http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    return "0"
