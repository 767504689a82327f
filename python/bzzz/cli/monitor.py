"""`bzzz monitor`: the Mesh Visualizer, a mesh node that takes no work and serves a web page of
the mesh (topology, agents, tasks, discussions, every agent's verified log), live."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from bzzz import config as agent_config
from bzzz.cli.agent import ConfigFile, load_config, run_supervisor
from bzzz.cli.errors import USAGE, fail
from bzzz.monitor.settings import DEFAULT_HTTP, parse_host_port
from bzzz.paths import MONITOR_ADDR_FILE, default_data_dir

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/0"  # any free port: an agent on the same host has 4001


def default_monitor_dir() -> Path:
    """Beside an agent's default data dir, never inside it: the monitor is an agent of its own."""
    base = default_data_dir()
    return base.with_name(base.name + "-monitor")


def monitor_config(
    config: Path | None, data_dir: Path | None, http: str | None, listen: list[str], bootstrap: list[str]
) -> agent_config.AgentConfig:
    """The agent config `bzzz monitor` runs: `config`'s identity, data dir and supervisor settings
    (and its [workers.mesh] / [workers.monitor] settings, if any), with two workers: a mesh
    worker that offers no models, no tools and takes no tasks, and the monitor."""
    base = load_config(config)
    mesh = dict(base.workers["mesh"].settings) if "mesh" in base.workers else {}
    if listen:
        mesh["listen"] = listen
    elif "mesh" not in base.workers:
        mesh["listen"] = [DEFAULT_LISTEN]
    discovery = dict(mesh.get("discovery") or {})
    discovery["bootstrap"] = [*discovery.get("bootstrap", []), *bootstrap]
    mesh["discovery"] = discovery
    mesh["capabilities"] = {**(mesh.get("capabilities") or {}), "ollama_endpoints": [], "tools": [], "max_tasks": 0}
    watch = dict(base.workers["monitor"].settings) if "monitor" in base.workers else {}
    if http is not None:
        watch["http"] = http
    update: dict[str, object] = {}
    if data_dir is not None:
        update["data_dir"] = data_dir.expanduser().absolute()
    elif config is None and not os.environ.get("BZZZ_CONFIG") and not os.environ.get("BZZZ_DATA_DIR"):
        update["data_dir"] = default_monitor_dir()
    if config is None and not os.environ.get("BZZZ_CONFIG") and not os.environ.get("BZZZ_NODE_ID"):
        update["node_id"] = f"monitor-{os.uname().nodename}"
    try:
        update["workers"] = {
            "mesh": agent_config.WorkerConfig(module="bzzz.workers.mesh", settings=mesh),
            "monitor": agent_config.WorkerConfig(module="bzzz.workers.monitor", settings=watch),
        }
    except ValueError as err:
        fail(f"invalid monitor settings: {err}", USAGE)
    return base.model_copy(update=update)


def _check_http(http: str) -> None:
    """Say at once, in one line, that the page's address cannot be had (rather than let the
    monitor worker fail to bind it until the supervisor gives up)."""
    host, port = parse_host_port(http)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as err:
        fail(f"cannot serve the page on {http}: {err.strerror or err}", USAGE)


def _announce(addr_file: Path, stop: threading.Event) -> None:
    """Print the page's URL as soon as the monitor worker has bound it."""
    while not stop.is_set():
        try:
            address = addr_file.read_text().strip()
        except OSError:
            time.sleep(0.1)
            continue
        if address:
            typer.echo(f"monitor at http://{address}/")
            return
        time.sleep(0.1)


def monitor(
    config: ConfigFile = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The monitor's own data dir (its mesh identity, the log copies it keeps). "
            "Default: beside the agent's default, <data dir>-monitor.",
            show_default=False,
        ),
    ] = None,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            help=f"HOST:PORT to serve the page on (port 0: any free port). Default {DEFAULT_HTTP}: "
            "this host only; give 0.0.0.0:PORT to let others see it.",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        list[str] | None,
        typer.Option("--listen", help=f"Mesh multiaddr to listen on (repeatable). Default {DEFAULT_LISTEN}."),
    ] = None,
    bootstrap: Annotated[
        list[str] | None,
        typer.Option("--bootstrap", help="Multiaddr with /p2p/<peer id> of an agent to join through (repeatable)."),
    ] = None,
) -> None:
    """Run the Mesh Visualizer: join the mesh as a node that takes no work, follow every
    agent's signed log by the key it advertises (each entry verified with the writer's key),
    and serve a web page of the mesh: topology, agents, tasks, discussions and logs, updated
    live. Prints `monitor at http://HOST:PORT/` once the page is up; stops on Ctrl-C."""
    if http is not None:
        try:
            parse_host_port(http)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--http'") from None
    settings = monitor_config(config, data_dir, http, listen or [], bootstrap or [])
    _check_http(settings.workers["monitor"].settings["http"])
    addr_file = settings.runtime_dir / MONITOR_ADDR_FILE
    addr_file.unlink(missing_ok=True)
    stop = threading.Event()
    threading.Thread(target=_announce, args=(addr_file, stop), daemon=True).start()
    try:
        status = run_supervisor(settings)
    finally:
        stop.set()
    raise typer.Exit(status)
