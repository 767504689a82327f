"""`bzzz forge`: the GitHub-compatible server that tests and the demo use instead of GitHub."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bzzz.cli.errors import USAGE, describe_os_error, fail

if TYPE_CHECKING:
    from bzzz.forge.app import Forge

app = typer.Typer(
    help="A GitHub-compatible server (REST API v3 + git over HTTP) for tests and the demo.", no_args_is_help=True
)

DataDir = Annotated[
    Path,
    typer.Option("--data", help="Where the forge keeps its database and git repositories.", envvar="BZZZ_FORGE_DATA"),
]


def _outage(text: str) -> tuple[float, float]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return float(start), float(end)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: an outage is START-END in seconds since start, e.g. 10-20") from None


def _usable(data: Path) -> None:
    """The forge's data dir exists (made if need be) and can be written, or one line says why not."""
    try:
        data.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        fail(f"--data {data}: not a directory", USAGE)
    except OSError as err:
        fail(f"--data {data}: cannot create it: {err.strerror or err}", USAGE)
    if not os.access(data, os.W_OK | os.X_OK):
        fail(f"--data {data}: not writable", USAGE)


def _forge(data: Path, url: str, **settings: Any) -> Forge:
    from bzzz.forge.app import Forge

    _usable(data)
    try:
        return Forge(data, url, **settings)
    except OSError as err:  # the database or a repository under it
        fail(f"--data {data}: {describe_os_error(err)}", USAGE)


@app.command()
def serve(
    data: DataDir = Path("forge-data"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one (printed).")] = 8080,
    base_url: Annotated[
        str | None, typer.Option(help="URL clients reach the forge at; default http://HOST:PORT.")
    ] = None,
    seed: Annotated[Path | None, typer.Option(help="YAML file of users, tokens, repos and issues to create.")] = None,
    rate_limit: Annotated[int, typer.Option(help="API calls per hour per token.")] = 5000,
    anonymous_rate_limit: Annotated[int, typer.Option(help="API calls per hour per address without a token.")] = 60,
    secondary_per_minute: Annotated[
        int,
        typer.Option(
            min=0,
            help="Secondary limit: content-creating calls (new issues, comments, pull requests) per minute per "
            "user, as GitHub; 0 = off.",
        ),
    ] = 80,
    secondary_per_hour: Annotated[
        int, typer.Option(min=0, help="Secondary limit: content-creating calls per hour per user, as GitHub; 0 = off.")
    ] = 500,
    secondary_minute_seconds: Annotated[
        float, typer.Option(min=0.001, help="Length of the secondary limit's 'minute', for tests that must see it end.")
    ] = 60.0,
    secondary_hour_seconds: Annotated[
        float, typer.Option(min=0.001, help="Length of the secondary limit's 'hour', for tests that must see it end.")
    ] = 3600.0,
    latency_ms: Annotated[float, typer.Option(help="Fault: latency added to every request.")] = 0,
    jitter_ms: Annotated[float, typer.Option(help="Fault: +/- this much on the latency.")] = 0,
    error_rate: Annotated[float, typer.Option(help="Fault: share of requests answered 503 (0-1).")] = 0,
    outage: Annotated[
        list[str] | None, typer.Option(help="Fault: START-END seconds after start when all is 503.")
    ] = None,
    fault_seed: Annotated[int | None, typer.Option(help="Seed of the fault draws, for repeatable runs.")] = None,
    record: Annotated[Path | None, typer.Option(help="Append every API exchange to this file as JSON lines.")] = None,
) -> None:
    """Serve the forge until interrupted. Prints the URL it listens on."""
    import uvicorn
    from pydantic import ValidationError

    from bzzz.forge.faults import FaultSettings
    from bzzz.forge.seed import Seed, apply

    try:
        faults = FaultSettings(
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            error_rate=error_rate,
            outages=[_outage(o) for o in outage or []],
            seed=fault_seed,
        )
    except ValidationError as error:
        raise typer.BadParameter(str(error)) from None
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without, a response written as headers then body waits
    # on the client's delayed ACK (Nagle), 40 ms a request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {error}") from None
    sock.listen(128)  # before saying so: a client may connect at once, and waits in the backlog
    bound = sock.getsockname()[1]
    url = base_url or f"http://{host}:{bound}"
    forge = _forge(
        data,
        url,
        rate_limit=rate_limit,
        anonymous_rate_limit=anonymous_rate_limit,
        faults=faults,
        record=record,
        secondary_per_minute=secondary_per_minute,
        secondary_per_hour=secondary_per_hour,
        secondary_minute_s=secondary_minute_seconds,
        secondary_hour_s=secondary_hour_seconds,
    )
    if seed is not None:
        try:
            created = apply(forge, Seed.load(seed))
        except (ValueError, ValidationError, OSError) as error:
            fail(f"cannot seed from {seed}: {error}", USAGE)
        typer.echo(f"seeded from {seed}: {created}")
    typer.echo(f"forge listening on {url} (data in {data})", err=False)
    server = uvicorn.Server(uvicorn.Config(forge.app(), log_level="warning", access_log=False))
    server.run(sockets=[sock])


@app.command("seed")
def seed_command(
    file: Annotated[Path, typer.Argument(help="YAML seed file (see bzzz.forge.seed).", exists=True, dir_okay=False)],
    data: DataDir = Path("forge-data"),
) -> None:
    """Create users, tokens, repos and issues from FILE, without serving."""
    from pydantic import ValidationError

    from bzzz.forge.seed import Seed, apply

    forge = _forge(data, "http://forge.invalid")
    try:
        created = apply(forge, Seed.load(file))
    except (ValueError, ValidationError, OSError) as error:
        fail(f"cannot seed from {file}: {error}", USAGE)
    typer.echo(f"created {created['users']} users, {created['repos']} repos, {created['issues']} issues")
