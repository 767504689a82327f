"""`bzzz mesh`: what a running agent's mesh worker sees (peers, connections, counters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from bzzz.bus import BusError, service_available
from bzzz.cli.agent import ConfigFile, load_config
from bzzz.cli.ctl import AsJson, RunDir
from bzzz.cli.errors import fail
from bzzz.mesh.client import SERVICE, MeshClient

app = typer.Typer(help="Inspect a running agent's mesh: its peer table and its counters.", no_args_is_help=True)


def _status(run_dir: Path | None, config: Path | None) -> dict[str, Any]:
    directory = run_dir if run_dir is not None else load_config(config).runtime_dir
    if not service_available(directory, SERVICE):
        fail(f"no mesh worker is running in {directory}; is `mesh` in the agent's workers? (`bzzz ctl status`)")
    client = MeshClient(directory, timeout_s=2.0)
    try:
        return client.status()
    except BusError as err:
        fail(f"the mesh worker did not answer ({err})")
    finally:
        client.close()


@app.command()
def peers(run_dir: RunDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """The live agents this one hears: node, peer id, models, tools, load, tasks, age of the last broadcast."""
    status = _status(run_dir, config)
    if as_json:
        typer.echo(json.dumps(status["peers"], indent=2))
        return
    rows = [["NODE", "PEER", "MODELS", "TOOLS", "LOAD", "TASKS", "HEARD"]]
    for peer in status["peers"]:
        caps = peer["capabilities"]
        rows.append(
            [
                peer["node_id"],
                peer["peer_id"][-12:],
                ",".join(caps.get("models", [])) or "-",
                ",".join(caps.get("tools", [])) or "-",
                f"{caps.get('load_permille', 0) / 10:.0f}%",
                f"{caps.get('active_tasks', 0)}/{caps.get('max_tasks', 0)}",
                f"{peer['age_s']:.1f}s ago",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


@app.command()
def status(run_dir: RunDir = None, config: ConfigFile = None, as_json: AsJson = False) -> None:
    """This node: peer id, listen addresses, connections, topics, and every drop and refusal counted."""
    reply = _status(run_dir, config)
    if as_json:
        typer.echo(json.dumps(reply, indent=2))
        return
    typer.echo(f"node {reply['node_id']}  peer {reply['peer_id']}")
    for addr in reply["listen"]:
        typer.echo(f"listening  {addr}")
    typer.echo(f"connected  {len(reply['connected'])} peers; {len(reply['peers'])} live agents")
    typer.echo(f"topics     {', '.join(reply['topics'])}")
    metrics = reply["metrics"]
    for name in (
        "bzzz_mesh_received_total",
        "bzzz_mesh_published_total",
        "bzzz_mesh_rejected_total",
        "bzzz_mesh_dropped_total",
    ):
        counts = {k: int(v) for k, v in metrics.get(name, {}).items() if v}
        label = name.removeprefix("bzzz_mesh_").removesuffix("_total")
        typer.echo(f"{label:<10} " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "0"))
    typer.echo(
        f"duplicates {int(metrics['bzzz_mesh_gossip_duplicates_total'][''])} (copies the router dropped as seen)"
    )
