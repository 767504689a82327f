"""`bzzz demo`, the README's first command: three agents turn the demo issues into pull requests,
and a monitor's page shows it (kept up with `--keep` until Ctrl-C)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from bzzz.paths import PID_FILE
from tests.agents import wait_until


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the agents' executors need bubblewrap")
def test_the_demo_turns_every_issue_into_a_pull_request_and_says_who_did_what(tmp_path: Path) -> None:
    # A relative --dir, as `make demo` gives (./demo-data/...): every worker must still agree on it.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "demo",
            "--dir",
            "demo",
            "--ollama",
            "http://127.0.0.1:9",
            "--no-embedded",
            "--timeout",
            "180",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "none (the model task is left out)" in out
    assert re.search(r"monitor at http://127\.0\.0\.1:\d+/ ", out), out  # the page's URL, on loopback
    assert out.count("✅ Done") == 4 and out.count("/pull/") >= 8  # each outcome links its PR, and the list
    assert out.count("verified, key ") == 3
    for agent in ("agent-1", "agent-2", "agent-3"):
        others = sorted({"agent-1", "agent-2", "agent-3"} - {agent})
        assert f"{agent}: hears {', '.join(others)}" in out
    # Every plan was posted on its issue's channel and heard by the two other agents.
    posted = [int(n) for n in re.findall(r"posted (\d+) plan\(s\)", out)]
    heard = [int(n) for n in re.findall(r"heard (\d+) message\(s\) from peers", out)]
    assert sum(posted) == 4 and sum(heard) == 2 * 4, out
    # And the first agent copied the two others' logs by their keys, verified.
    assert out.count("copied to agent-1 and verified") == 2


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the agents' executors need bubblewrap")
def test_demo_keep_serves_the_monitor_page_after_the_summary_until_ctrl_c_then_stops_everything(
    tmp_path: Path,
) -> None:
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "demo",
            "--dir",
            "demo",
            "--ollama",
            "http://127.0.0.1:9",
            "--no-embedded",
            "--timeout",
            "180",
            "--keep",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: any("Kept up until Ctrl-C" in line for line in lines) or demo.poll() is not None, 400, "the summary"
        )
        out = "".join(lines)
        assert demo.poll() is None, out
        assert out.count("✅ Done") == 4, out  # the summary came first
        page = re.search(r"monitor at (http://\S+)", out)
        assert page is not None, out
        url = page.group(1)
        # After the summary, where the demo without --keep has stopped everything: the page answers
        # and shows the three agents, live.
        answer = httpx.get(url, timeout=30)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]

        def live_agents() -> set[str]:
            agents = httpx.get(url + "api/agents", timeout=30).json()["agents"]
            return {a["node_id"] for a in agents if a["live"]}

        wait_until(lambda: live_agents() == {"agent-1", "agent-2", "agent-3"}, 60, "three live agents on the page")

        def tasks_done() -> int:
            tasks = httpx.get(url + "api/tasks", timeout=30).json()["tasks"]
            return sum(t["state"] == "pr" for t in tasks if t["repo"] == "alice/widgets")

        wait_until(lambda: tasks_done() == 4, 120, "the four tasks at their PRs on the page, as in the summary")
        run_dirs = [tmp_path / "demo" / name / "run" for name in ("agent-1", "agent-2", "agent-3", "monitor")]
        pids = [int((run / PID_FILE).read_text().split()[0]) for run in run_dirs]
        assert all(_pid_alive(pid) for pid in pids)

        demo.send_signal(signal.SIGINT)  # Ctrl-C, to the demo alone: it must stop the rest itself
        assert demo.wait(120) == 0
        reader.join(30)
        out = "".join(lines)
        assert "Ctrl-C: stopping the agents, the monitor and the forge." in out
        assert not any(_pid_alive(pid) for pid in pids)
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=5)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
