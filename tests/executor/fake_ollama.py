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
from typing import Any

import uvicorn

from bzzz.executor.ollama_server import ModelInfo, ScriptedBackend, create_app


class FakeOllama:
    def __init__(self, models: list[str], answers: list[str], rules: dict[str, list[str]] | None = None) -> None:
        self.backend = ScriptedBackend([ModelInfo(m, size=291_000_000, family="gemma3") for m in models], list(answers),
                                       rules=[(needle, list(script)) for needle, script in (rules or {}).items()])
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
def fake_ollama(models: list[str], answers: list[str], rules: dict[str, list[str]] | None = None) -> Iterator[FakeOllama]:
    server = FakeOllama(models, answers, rules).start()
    try:
        yield server
    finally:
        server.close()
