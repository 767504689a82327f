"""`bzzz ctl`: control a running agent over its control socket."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bzzz.cli.agent import ConfigFile, load_config
from bzzz.cli.errors import describe_os_error, fail
from bzzz.supervisor import ControlClient, ControlError

app = typer.Typer(
    help="Control a running agent: status, health, start, stop, restart, logs, shutdown.", no_args_is_help=True
)

RunDir = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        envvar="BZZZ_RUN_DIR",
        help="The agent's run dir (env BZZZ_RUN_DIR). Default: from the config, <data_dir>/run.",
        show_default=False,
    ),
]
Worker = Annotated[str, typer.Argument(help="Worker name, as in `bzzz ctl status`.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the agent's JSON reply.")]


def _call(run_dir: Path | None, config: Path | None, command: str, **properties: Any) -> dict[str, Any]:
    directory = run_dir if run_dir is not None else load_config(config).runtime_dir
    try:
        return ControlClient(directory).call(command, **properties)
    except ControlError as err:
        fail(err.reason)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


@app.command()
def status(run_dir: RunDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """Every worker: pid, state, uptime, restarts, last exit reason."""
    reply = _call(run_dir, config, "status")
    if as_json:
        typer.echo(json.dumps(reply, indent=2))
        return
    agent = reply["agent"]
    typer.echo(
        f"agent {agent['node_id']}  pid {agent['pid']}  up {_age(agent['uptime_s'])}  run dir {agent['run_dir']}"
    )
    bus = agent.get("bus", {})
    if bus.get("running"):
        typer.echo(f"bus   running  {bus.get('events', '?')} events  {bus.get('bytes', '?')} bytes")
    else:
        typer.echo("bus   DOWN")
    if agent.get("metrics"):
        typer.echo(f"metrics http://{agent['metrics']}/metrics")
    rows = [["WORKER", "PID", "STATE", "UPTIME", "RESTARTS", "LAST EXIT"]]
    for w in reply["workers"]:
        rows.append(
            [
                w["worker"],
                str(w["pid"] or "-"),
                w["state"],
                _age(w["uptime_s"]),
                str(w["restarts"]),
                w["last_exit"] or "-",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


@app.command()
def health(run_dir: RunDir = None, config: ConfigFile = None) -> None:
    """Exit 0 if the agent answers and every worker is running, else 1 saying which is not
    (a container's HEALTHCHECK)."""
    workers = _call(run_dir, config, "status")["workers"]
    down = [w for w in workers if w["state"] != "running"]
    if down:
        said = [f"{w['worker']} {w['state']}" + (f" ({w['last_exit']})" if w["last_exit"] else "") for w in down]
        fail("unhealthy: " + ", ".join(said))
    typer.echo(f"healthy: {len(workers)} workers running")


@app.command()
def start(worker: Worker, run_dir: RunDir = None, config: ConfigFile = None) -> None:
    """Start a stopped worker."""
    reply = _call(run_dir, config, "start", worker=worker)
    typer.echo(f"{worker}: {reply['state']} (pid {reply['pid']})")


@app.command()
def stop(worker: Worker, run_dir: RunDir = None, config: ConfigFile = None) -> None:
    """Stop a worker (SIGTERM, then SIGKILL after its timeout); it stays down until `start`."""
    reply = _call(run_dir, config, "stop", worker=worker)
    typer.echo(f"{worker}: {reply['state']}")


@app.command()
def restart(worker: Worker, run_dir: RunDir = None, config: ConfigFile = None) -> None:
    """Stop a worker and start it again."""
    reply = _call(run_dir, config, "restart", worker=worker)
    typer.echo(f"{worker}: restarting (was pid {reply['pid']})")


@app.command()
def logs(
    worker: Worker,
    run_dir: RunDir = None,
    config: ConfigFile = None,
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many of the last lines.")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing what the worker writes.")] = False,
) -> None:
    """A worker's output (stdout and stderr)."""
    reply = _call(run_dir, config, "logs", worker=worker, lines=lines)
    for line in reply["lines"]:
        typer.echo(line)
    if follow:
        path = Path(reply["path"])
        try:
            log = open(path, errors="replace")
        except OSError as err:  # the agent runs as someone else, or the file went away
            fail(f"cannot follow {worker}'s log: {describe_os_error(err)}")
        with log:
            log.seek(0, 2)
            try:
                while True:
                    line = log.readline()
                    if line:
                        typer.echo(line.rstrip("\n"))
                    else:
                        time.sleep(0.2)
            except KeyboardInterrupt:
                pass


@app.command()
def shutdown(run_dir: RunDir = None, config: ConfigFile = None) -> None:
    """Stop every worker and end the agent."""
    _call(run_dir, config, "shutdown")
    typer.echo("agent is shutting down")
