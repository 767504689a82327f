"""`bzzz model serve`: a local model behind Ollama's API, for machines without Ollama."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bzzz.cli.errors import USAGE, fail

app = typer.Typer(help="Serve a local GGUF model behind Ollama's API (needs `make model`).", no_args_is_help=True)


@app.command()
def serve(
    gguf: Annotated[
        Path | None,
        typer.Option(
            help="The GGUF model file. Default: the small Gemma 3 (270M) "
            "model from PyPI, assembled into ~/.cache on first use."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="The model's name in /api/tags.")] = "gemma3:270m",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (Ollama's is 11434).")] = 11434,
    context: Annotated[int, typer.Option(help="Context window, in tokens.")] = 4096,
    threads: Annotated[int | None, typer.Option(help="CPU threads (default: llama.cpp's choice).")] = None,
) -> None:
    """Answer /api/tags, /api/chat and /api/generate as Ollama does, with a model run in-process."""
    import uvicorn

    from bzzz.executor.ollama_server import LlamaBackend, create_app, embedded_gemma_path

    try:
        path = gguf if gguf is not None else embedded_gemma_path()
        if not path.is_file():
            raise RuntimeError(f"no model file at {path}")
        backend = LlamaBackend(path, name, context=context, threads=threads)
    except RuntimeError as err:
        fail(str(err), USAGE)
    typer.echo(f"serving {name} ({path}) on http://{host}:{port}")
    uvicorn.run(create_app(backend), host=host, port=port, log_level="warning")
