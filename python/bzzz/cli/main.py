"""`bzzz`: the operator's command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import structlog
import typer

from bzzz import __version__
from bzzz.cli import agent, config, ctl, forge, log, mesh, model

app = typer.Typer(
    name="bzzz",
    help="Bzzz: agents that find each other over libp2p, take GitHub issues, "
    "discuss a plan, do the work with local models, and keep a signed log of it all.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    # Logs are for the operator's eyes and go to stderr; stdout carries each command's output.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


app.add_typer(log.app, name="log")
app.add_typer(agent.app, name="agent")
app.add_typer(ctl.app, name="ctl")
app.add_typer(config.app, name="config")
app.add_typer(forge.app, name="forge")
app.add_typer(mesh.app, name="mesh")
app.add_typer(model.app, name="model")


@app.command()
def demo(
    directory: Annotated[Path | None, typer.Option("--dir", "-d", help="Where the forge and the agents keep "
                                                   "their data. Default: a new folder under ./demo-data.")] = None,
    ollama: Annotated[str, typer.Option(help="An Ollama to use for the model task, if one answers there.")]
    = "http://127.0.0.1:11434",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every issue to have an outcome.")] = 240.0,
    embedded: Annotated[bool, typer.Option(help="Without an Ollama, serve the embedded model if `make model` "
                                           "installed it.")] = True,
) -> None:
    """The main job on one machine: a forge with a demo repository and its issues, three
    agents that find each other, claim the issues, do them in a sandbox and open pull
    requests; then a summary of who did what."""
    from bzzz.cli import demo as cluster_demo

    raise typer.Exit(cluster_demo.run_demo(directory or cluster_demo.default_root(), ollama, timeout, embedded))


@app.command()
def version() -> None:
    """Print the version of Bzzz."""
    typer.echo(__version__)


if __name__ == "__main__":
    app()
