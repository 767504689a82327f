"""An Ollama-API-compatible server for tests, answering from a script.

It speaks the documented shapes of `/api/tags`, `/api/chat` (streamed NDJSON or one JSON
object, as `stream` asks), `/api/generate` and `/api/version`, so the real `ollama` client
talks to it unchanged; each chat or generate call takes the next scripted answer (the last
one repeats) and records the request, so tests can read what the model was asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOllama:
    def __init__(self, models: list[str], answers: list[str]) -> None:
        self.models = models
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def next_answer(self, request: dict[str, Any]) -> str:
        with self._lock:
            self.requests.append(request)
            return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._json(200, {"models": [{
                        "name": m, "model": m, "modified_at": "2026-11-01T10:00:00.000000000Z", "size": 291_000_000,
                        "digest": "0" * 64, "details": {"parent_model": "", "format": "gguf", "family": "gemma3",
                                                        "families": ["gemma3"], "parameter_size": "268M",
                                                        "quantization_level": "Q4_K_M"}} for m in fake.models]})
                elif self.path == "/api/version":
                    self._json(200, {"version": "0.6.0"})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path not in ("/api/chat", "/api/generate"):
                    self._json(404, {"error": "not found"})
                    return
                if request.get("model") not in fake.models:
                    self._json(404, {"error": f"model '{request.get('model')}' not found"})
                    return
                answer = fake.next_answer(request)
                chat = self.path == "/api/chat"
                base = {"model": request["model"], "created_at": "2026-11-29T12:00:00.000000000Z"}

                def piece(text: str, done: bool) -> dict[str, Any]:
                    out = {**base, "done": done}
                    if chat:
                        out["message"] = {"role": "assistant", "content": text}
                    else:
                        out["response"] = text
                    if done:
                        out.update(done_reason="stop", total_duration=1, eval_count=len(answer.split()))
                    return out

                if request.get("stream", True):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.end_headers()
                    for word in answer.split(" "):
                        self.wfile.write((json.dumps(piece(word + " ", False)) + "\n").encode())
                    self.wfile.write((json.dumps(piece("", True)) + "\n").encode())
                else:
                    self._json(200, piece(answer, True))

        return Handler

    def start(self) -> FakeOllama:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_ollama(models: list[str], answers: list[str]) -> Iterator[FakeOllama]:
    server = FakeOllama(models, answers).start()
    try:
        yield server
    finally:
        server.close()
