"""`bzzz`: the operator's command line."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import structlog
import typer

from bzzz import __version__
from bzzz.cli import agent, config, ctl, forge, log, mesh, model
from bzzz.cli import monitor as monitor_command
from bzzz.cli.errors import FAILURE, USAGE, describe_os_error, say


def _subcommand(ctx: click.Context | None) -> str:
    # click names the program as it was started ("python -m bzzz.cli.main"); the user knows it as bzzz.
    return "" if ctx is None else ctx.command_path[len(ctx.find_root().command_path) :].strip()


class Bzzz(typer.Typer):
    """The `bzzz` program: a user's mistake is one line on stderr and exit status 2 (1 for a
    failure at run time), never a traceback or click's usage block."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.pop("standalone_mode", True):
            return super().__call__(*args, standalone_mode=False, **kwargs)
        try:
            status = super().__call__(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as err:  # `bzzz log`: the help is the answer
            typer.echo(err.ctx.get_help(), err=True)
            sys.exit(USAGE)
        except click.UsageError as err:
            sub = _subcommand(err.ctx)
            say(f"{sub + ': ' if sub else ''}{err.format_message()} (see `{' '.join(['bzzz', sub]).strip()} --help`)")
            sys.exit(USAGE)
        except click.ClickException as err:
            say(err.format_message())
            sys.exit(err.exit_code)
        except click.Abort:
            say("aborted")
            sys.exit(FAILURE)
        except OSError as err:
            # The last resort for a file or device that fails under a command (each command
            # reports what it expects itself): still one line, and the status of a failure.
            if err.errno != errno.EPIPE:
                say(describe_os_error(err))
            sys.exit(FAILURE)
        sys.exit(status if isinstance(status, int) else 0)


app = Bzzz(
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
app.command("monitor")(monitor_command.monitor)


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            "-d",
            help="Where the forge and the agents keep their data. Default: a new folder under ./demo-data.",
        ),
    ] = None,
    ollama: Annotated[
        str, typer.Option(help="An Ollama to use for the model task, if one answers there.")
    ] = "http://127.0.0.1:11434",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every issue to have an outcome.")] = 240.0,
    embedded: Annotated[
        bool, typer.Option(help="Without an Ollama, serve the embedded model if `make model` installed it.")
    ] = True,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="After the summary, keep the forge, the agents and the monitor up (to look at the "
            "monitor's page) until Ctrl-C.",
        ),
    ] = False,
    http: Annotated[
        str, typer.Option(help="Where the monitor's page listens, HOST:PORT (port 0: any free port).")
    ] = "127.0.0.1:0",
) -> None:
    """The main job on one machine: a forge with a demo repository and its issues, three
    agents that find each other, claim the issues, do them in a sandbox and open pull
    requests, and a monitor whose page (its URL is printed) shows it all live; then a
    summary of who did what."""
    from bzzz.cli import demo as cluster_demo
    from bzzz.monitor.settings import parse_host_port

    try:
        parse_host_port(http)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--http'") from None
    root = directory or cluster_demo.default_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise typer.BadParameter(f"{root}: {err.strerror or err}", param_hint="'--dir'") from None
    raise typer.Exit(cluster_demo.run_demo(root, ollama, timeout, embedded, keep=keep, http=http))


@app.command()
def version() -> None:
    """Print the version of Bzzz."""
    typer.echo(__version__)


if __name__ == "__main__":
    app()
