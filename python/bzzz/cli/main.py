"""`bzzz`: the operator's command line."""

from __future__ import annotations

import sys

import structlog
import typer

from bzzz import __version__
from bzzz.cli import agent, config, ctl, forge, log, mesh

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


@app.command()
def version() -> None:
    """Print the version of Bzzz."""
    typer.echo(__version__)


if __name__ == "__main__":
    app()
