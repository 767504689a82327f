"""A malformed model takes a real `ollama serve` down (`make test-ollama`; skipped where none is
built), and nothing of ours goes down with it: our import refuses the file before Ollama sees
it, detection then finds no models there, and a task whose Ollama dies under it fails for a
passing reason (another agent may do it), with no pull request and the executor still running."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bzzz.capabilities import CapabilityConfig, CapabilityDetector
from bzzz.executor.model import ModelExecutor, ModelSettings, ModelUnavailable
from bzzz.executor.sandbox import Sandbox
from tests.agents import Agent, wait_until
from tests.forge.harness import start_forge, stop_forge
from tests.issues import SEED, agent_workers, open_issue, wait_for_comment
from tests.ollama import (
    TINY,
    BadModel,
    Server,
    binary,
    check_gguf,
    import_model,
    listed,
    runners_left,
    write_malformed_model,
    write_tiny_model,
)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def crash(server: Server, where: Path) -> None:
    """Feed the server the malformed model, unchecked, and wait until it has died of it."""
    ollama = binary()
    assert ollama is not None
    try:
        import_model(server, ollama, "malformed", write_malformed_model(where / "malformed.gguf"), check=False)
    except subprocess.CalledProcessError:
        pass  # the client sees the connection drop
    wait_until(lambda: not server.alive(), 60, "ollama serve to die of the malformed model")


def test_the_tiny_model_is_the_same_bytes_every_time_and_the_check_passes_it_but_not_broken_files(
    tmp_path: Path,
) -> None:
    first, second = write_tiny_model(tmp_path / "a.gguf"), write_tiny_model(tmp_path / "b.gguf")
    assert first.read_bytes() == second.read_bytes() and 400_000 < first.stat().st_size < 600_000
    check_gguf(first)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    for broken in (write_malformed_model(tmp_path / "malformed.gguf"), truncated):
        with pytest.raises(BadModel, match=f"{broken.name}: not a readable GGUF file"):
            check_gguf(broken)


def test_importing_a_malformed_model_takes_the_whole_server_down(fresh_ollama: Server, tmp_path: Path) -> None:
    assert TINY in listed(fresh_ollama)
    crash(fresh_ollama, tmp_path)
    assert fresh_ollama.process.returncode != 0
    assert "panic: runtime error" in fresh_ollama.output()  # Ollama's GGUF decoder, not a kill of ours


def test_our_import_refuses_the_malformed_model_before_ollama_sees_it(fresh_ollama: Server, tmp_path: Path) -> None:
    ollama = binary()
    assert ollama is not None
    with pytest.raises(BadModel, match="malformed.gguf: not a readable GGUF file"):
        import_model(fresh_ollama, ollama, "malformed", write_malformed_model(tmp_path / "malformed.gguf"))
    assert fresh_ollama.alive() and listed(fresh_ollama) == [TINY]
    assert fresh_ollama.output().count('"/api/create"') == 1  # the tiny model's: this one was never sent


def test_detection_finds_no_models_on_a_crashed_ollama_and_warns_once(fresh_ollama: Server, tmp_path: Path) -> None:
    detector = CapabilityDetector(CapabilityConfig(ollama_endpoints=[fresh_ollama.url], probe_timeout_s=30))
    before = detector.detect()
    assert before.models == (TINY,) and before.endpoints[0].reachable
    crash(fresh_ollama, tmp_path)
    with capture_logs() as logs:
        after, again = detector.detect(), detector.detect()
    assert after.models == () and not after.endpoints[0].reachable and after.endpoints[0].error
    assert again.models == ()
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warned] == ["ollama endpoint went down; its models are no longer offered"]
    assert warned[0]["url"] == fresh_ollama.url


@needs_bwrap
def test_a_model_executor_whose_ollama_dies_between_rounds_says_so(
    fresh_ollama: Server, sandbox: Sandbox, tmp_path: Path
) -> None:
    executor = ModelExecutor(ModelSettings(endpoints=(fresh_ollama.url,), default_model=TINY, rounds=3))
    resets: list[int] = []

    def reset() -> None:  # after the first round's answer: the server dies before the second
        resets.append(1)
        if len(resets) == 1:
            crash(fresh_ollama, tmp_path)

    with pytest.raises(ModelUnavailable, match=f"the Ollama at {fresh_ollama.url} failed while {TINY} worked"):
        executor.work(
            sandbox.files, "Add a greeting", "Write hello into GREETING.md", frozenset(), [("true",)],
            sandbox.run, reset,
        )  # fmt: skip
    assert len(resets) == 1
    # Ollama's own behaviour, worth knowing: the model runner it had started outlives it (the
    # fixture ends its process group; for a service, systemd's control-group kill does).
    assert not fresh_ollama.alive() and runners_left(fresh_ollama)


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


MODEL_TASK = """Add a greeting file that says hello.

```bzzz-task
check: ["grep -q hello GREETING.md"]
```
"""


@needs_bwrap
def test_an_agent_whose_ollama_crashes_mid_task_fails_the_attempt_for_a_passing_reason(
    fresh_ollama: Server, start_agent: Callable[..., Agent], forge: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("agent-1-secret-token\n")
    # Many rounds: the task is still asking the model when its server dies.
    agent = start_agent(
        agent_workers(forge.url, token_file, ollama_endpoints=[fresh_ollama.url], model=TINY, rounds=20, allow=["grep"])
    )
    executor_pid = agent.wait_running("executor", timeout=60)["pid"]
    number = open_issue(forge, "Add a greeting", MODEL_TASK)
    wait_until(lambda: '"/api/chat"' in fresh_ollama.output(), 300, "the model's first answer")  # its access log
    crash(fresh_ollama, tmp_path)
    bodies = wait_for_comment(forge, number, "Attempt 1 of 3 failed", timeout=300)
    failure = next(b for b in bodies if "Attempt 1 of 3 failed" in b)
    assert f"Not done here: the Ollama at {fresh_ollama.url} failed while {TINY} worked" in failure
    assert "Any agent may try again" in failure  # a passing reason: the claim is given back
    assert forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json() == []
    assert agent.worker("executor")["pid"] == executor_pid  # no worker died with Ollama
