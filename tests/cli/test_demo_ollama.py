"""`bzzz demo --ollama URL` against a real `ollama serve` (`make test-ollama`; skipped where none
is built): the model's issue is attempted with the real server's model, the command issues all
become pull requests, and the summary says what became of the model's one."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ollama import TINY, Server

MODEL_ISSUE = "#5 Write a haiku about bees"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="the agents' executors need bubblewrap")
def test_the_demo_attempts_its_model_issue_with_the_fresh_ollama_and_says_what_became_of_it(
    fresh_ollama: Server, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "demo",
            "--dir",
            "demo",
            "--ollama",
            fresh_ollama.url,
            "--no-embedded",
            "--timeout",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"Ollama at {fresh_ollama.url}: {TINY}" in out
    assert out.count("✅ Done") == 4  # every command issue became a pull request
    # The model's issue was taken and attempted; the tiny model's nonsense passes no check, so it
    # ends as a failure the summary shows (with why), not as a pull request or a silent timeout.
    outcome = re.search(re.escape(MODEL_ISSUE) + r"\n\s+(.*)", out)
    assert outcome is not None, out
    assert "Could not finish" in outcome.group(1) and "no outcome before the deadline" not in outcome.group(1), out
    assert "Write a haiku about bees (#5)" not in out.split("\nPull requests:", 1)[1], out
    assert fresh_ollama.alive()
