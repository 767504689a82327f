"""Ollama for tests: the project's Ollama-compatible server (`bzzz.executor.ollama_server`) with
scripted answers, run by uvicorn in a thread on 127.0.0.1. Each chat or generate call takes the
next answer (the last one repeats) of the first rule whose text is in the request, else of
`answers`, and is recorded in `requests`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from bzzz.executor.ollama_server import ModelInfo, create_app


@dataclass
class ScriptedBackend:
    """Answers from a script: the first of `rules` whose text occurs in the request (the prompt,
    or the chat's last message) answers from its own list, else `answers` does. Each list is
    taken in order, its last answer repeating. Remembers every request."""

    models: list[ModelInfo]
    answers: list[str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    rules: list[tuple[str, list[str]]] = field(default_factory=list)

    def _next(self, request: dict[str, Any], text: str) -> Iterator[str]:
        self.requests.append(request)
        script = next((answers for needle, answers in self.rules if needle in text), self.answers)
        answer = script.pop(0) if len(script) > 1 else script[0]
        words = answer.split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[str]:
        last = str(messages[-1].get("content", "")) if messages else ""
        return self._next({"model": model, "messages": messages, "options": options}, last)

    def generate(self, model: str, prompt: str, options: dict[str, Any]) -> Iterator[str]:
        return self._next({"model": model, "prompt": prompt, "options": options}, prompt)


class FakeOllama:
    def __init__(self, models: list[str], answers: list[str], rules: dict[str, list[str]] | None = None) -> None:
        self.backend = ScriptedBackend(
            [ModelInfo(m, size=291_000_000, family="gemma3") for m in models],
            list(answers),
            rules=[(needle, list(script)) for needle, script in (rules or {}).items()],
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(self.backend), host="127.0.0.1", port=port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.backend.requests

    def start(self) -> FakeOllama:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the scripted Ollama did not start")
            time.sleep(0.01)
        return self

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@contextmanager
def fake_ollama(
    models: list[str], answers: list[str], rules: dict[str, list[str]] | None = None
) -> Iterator[FakeOllama]:
    server = FakeOllama(models, answers, rules).start()
    try:
        yield server
    finally:
        server.close()
