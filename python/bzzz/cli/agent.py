"""`bzzz agent`: run this host's agent (the supervisor and its workers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bzzz import config as agent_config
from bzzz.cli.errors import USAGE, fail
from bzzz.supervisor import StartError, Supervisor

app = typer.Typer(help="Run this host's agent: a supervisor and its workers.", no_args_is_help=True)

ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", envvar="BZZZ_CONFIG", help="TOML config file (env BZZZ_CONFIG).", show_default=False
    ),
]


def load_config(path: Path | None) -> agent_config.AgentConfig:
    try:
        return agent_config.load(path)
    except agent_config.ConfigError as err:
        fail(str(err), USAGE)


@app.command()
def run(config: ConfigFile = None) -> None:
    """Start the supervisor, which starts each configured worker as its own process and keeps
    them running. Stops on SIGTERM/SIGINT or `bzzz ctl shutdown`; exits 3 if workers crash
    more often than the restart-intensity limit allows."""
    raise typer.Exit(run_supervisor(load_config(config)))


def run_supervisor(settings: agent_config.AgentConfig) -> int:
    """Run the supervisor of `settings` until it stops; its exit status (`bzzz monitor` too)."""
    try:
        return Supervisor(settings).run()
    except StartError as err:  # another agent on the data dir, a data dir that cannot be used, ...
        fail(str(err), err.status)
