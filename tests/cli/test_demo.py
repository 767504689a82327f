"""`bzzz demo`, the README's first command: three agents turn the demo issues into pull requests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


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
