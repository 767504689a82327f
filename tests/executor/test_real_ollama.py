"""The executor's model path against a real `ollama serve` (`make test-ollama`; skipped where
none is built), with the tiny random model (`tests.ollama`): it answers at once, in nonsense.
So this checks the path (the official client, Ollama's own API) and what the agent does with
an answer it cannot use: the attempt fails cleanly, and no pull request is opened. With Gemma 3
270M imported (`make model` first), the real-model checks of test_real_model.py run here too."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from bzzz.executor.model import ModelExecutor, ModelSettings
from bzzz.executor.sandbox import Sandbox
from tests.agents import Agent
from tests.forge.harness import start_forge, stop_forge
from tests.issues import SEED, agent_workers, comments, open_issue, wait_for_comment
from tests.ollama import GEMMA, TINY, Server, listed

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

MODEL_TASK = """Add a greeting file that says hello.

```bzzz-task
check: ["grep -q hello GREETING.md"]
```
"""


def test_the_tiny_model_answers_the_official_client_the_same_way_twice(real_ollama: Server) -> None:
    client = ollama.Client(host=real_ollama.url, timeout=300)
    ask = {"model": TINY, "messages": [{"role": "user", "content": "Say hello."}], "options": {"temperature": 0}}
    first, second = client.chat(**ask), client.chat(**ask)
    assert first.done and first.message.role == "assistant" and first.message.content
    assert first.message.content == second.message.content  # greedy decoding of fixed weights


@needs_bwrap
def test_a_model_round_with_nonsense_fails_cleanly_and_leaves_the_workspace(
    real_ollama: Server, sandbox: Sandbox
) -> None:
    workspace = sandbox.files
    (workspace / "README.md").write_text("# Widgets\n")
    executor = ModelExecutor(ModelSettings(endpoints=(real_ollama.url,), default_model=TINY, rounds=2))
    resets: list[int] = []
    result = executor.work(
        workspace,
        "Add a greeting",
        "Write hello into GREETING.md",
        frozenset(),
        [("grep", "-q", "hello", "GREETING.md")],
        sandbox.run,
        lambda: resets.append(1),
    )
    assert not result.ok and result.model == TINY and result.rounds == 2
    assert "no working change in 2 round(s)" in result.summary
    assert len(resets) == 3  # before each round's edits, and once at the end: nothing half-applied stays


@pytest.fixture
def forge(tmp_path: Path) -> Iterator[Any]:
    running = start_forge(tmp_path / "forge", seed=SEED)
    yield running
    stop_forge(running)


@needs_bwrap
def test_an_agent_given_nonsense_fails_the_attempt_and_opens_no_pull_request(
    real_ollama: Server, start_agent: Callable[..., Agent], forge: Any, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("agent-1-secret-token\n")
    agent = start_agent(
        agent_workers(forge.url, token_file, ollama_endpoints=[real_ollama.url], model=TINY, rounds=2, allow=["grep"])
    )
    executor_pid = agent.wait_running("executor", timeout=60)["pid"]
    number = open_issue(forge, "Add a greeting", MODEL_TASK)
    bodies = wait_for_comment(forge, number, "Attempt 1 of 3 failed", timeout=300)
    failure = next(b for b in bodies if "Attempt 1 of 3 failed" in b)
    assert f"{TINY} found no working change in 2 round(s)" in failure
    assert forge.call("GET", "/repos/alice/tasks/pulls", token="alice-token").json() == []
    assert agent.worker("executor")["pid"] == executor_pid  # the worker lived through it
    assert not any("Opened " in b for b in comments(forge, number))


def _gemma(server: Server) -> None:
    if GEMMA not in listed(server):
        pytest.skip("Gemma 3 270M is not imported (make model, then make test-ollama)")


def test_gemma_answers_whole_and_streamed(real_ollama: Server) -> None:
    _gemma(real_ollama)
    client = ollama.Client(host=real_ollama.url, timeout=300)
    whole = client.generate(model=GEMMA, prompt="The bee is", options={"num_predict": 12})
    assert whole.done and whole.response.strip()
    pieces = list(
        client.generate(model=GEMMA, prompt="Bees make honey because", stream=True, options={"num_predict": 12})
    )
    assert len(pieces) > 2 and pieces[-1].done and "".join(p.response for p in pieces).strip()


def test_a_client_that_will_not_wait_for_gemma_gets_a_timeout_not_a_hang(real_ollama: Server) -> None:
    _gemma(real_ollama)
    with pytest.raises(httpx.TimeoutException):
        ollama.Client(host=real_ollama.url, timeout=0.001).generate(
            model=GEMMA, prompt="Tell a long story", options={"num_predict": 200}
        )


def test_a_gemma_round_ends_cleanly_whatever_it_writes(real_ollama: Server, sandbox: Sandbox) -> None:
    _gemma(real_ollama)
    executor = ModelExecutor(
        ModelSettings(endpoints=(real_ollama.url,), default_model=GEMMA, rounds=1, options={"num_predict": 48})
    )
    result = executor.work(
        sandbox.files,
        "Add a greeting",
        "Write hello into GREETING.md",
        frozenset(),
        [("test", "-s", "GREETING.md")],
        sandbox.run,
        lambda: None,
    )
    assert result.model == GEMMA and result.rounds == 1
    assert result.ok or "no working change in 1 round(s)" in result.summary
