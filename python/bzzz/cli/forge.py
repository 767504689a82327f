"""`bzzz forge`: the GitHub-compatible server that tests and the demo use instead of GitHub."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="A GitHub-compatible server (REST API v3 + git over HTTP) for tests and the demo.",
                  no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data", help="Where the forge keeps its database and git repositories.",
                                       envvar="BZZZ_FORGE_DATA")]


def _outage(text: str) -> tuple[float, float]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return float(start), float(end)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: an outage is START-END in seconds since start, e.g. 10-20") from None


@app.command()
def serve(
    data: DataDir = Path("forge-data"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one (printed).")] = 8080,
    base_url: Annotated[str | None, typer.Option(help="URL clients reach the forge at; default http://HOST:PORT.")]
    = None,
    seed: Annotated[Path | None, typer.Option(help="YAML file of users, tokens, repos and issues to create.")] = None,
    rate_limit: Annotated[int, typer.Option(help="API calls per hour per token.")] = 5000,
    anonymous_rate_limit: Annotated[int, typer.Option(help="API calls per hour per address without a token.")] = 60,
    latency_ms: Annotated[float, typer.Option(help="Fault: latency added to every request.")] = 0,
    jitter_ms: Annotated[float, typer.Option(help="Fault: +/- this much on the latency.")] = 0,
    error_rate: Annotated[float, typer.Option(help="Fault: share of requests answered 503 (0-1).")] = 0,
    outage: Annotated[list[str] | None, typer.Option(help="Fault: START-END seconds after start when all is 503.")]
    = None,
    fault_seed: Annotated[int | None, typer.Option(help="Seed of the fault draws, for repeatable runs.")] = None,
    record: Annotated[Path | None, typer.Option(help="Append every API exchange to this file as JSON lines.")]
    = None,
) -> None:
    """Serve the forge until interrupted. Prints the URL it listens on."""
    import uvicorn
    from pydantic import ValidationError

    from bzzz.forge.app import Forge
    from bzzz.forge.faults import FaultSettings
    from bzzz.forge.seed import Seed, apply

    try:
        faults = FaultSettings(latency_ms=latency_ms, jitter_ms=jitter_ms, error_rate=error_rate,
                               outages=[_outage(o) for o in outage or []], seed=fault_seed)
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
    forge = Forge(data, url, rate_limit=rate_limit, anonymous_rate_limit=anonymous_rate_limit, faults=faults,
                  record=record)
    if seed is not None:
        try:
            created = apply(forge, Seed.load(seed))
        except (ValueError, ValidationError, OSError) as error:
            typer.echo(f"error: cannot seed from {seed}: {error}", err=True)
            raise typer.Exit(2) from None
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

    from bzzz.forge.app import Forge
    from bzzz.forge.seed import Seed, apply

    try:
        created = apply(Forge(data, "http://forge.invalid"), Seed.load(file))
    except (ValueError, ValidationError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {created['users']} users, {created['repos']} repos, {created['issues']} issues")
