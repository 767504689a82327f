"""`bzzz config show`: every setting, its value, and where that value came from."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from bzzz.cli.agent import ConfigFile, load_config
from bzzz.cli.errors import USAGE, fail
from bzzz.config import ConfigError, read_file

app = typer.Typer(help="Inspect the agent's configuration.", no_args_is_help=True)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _source(key: str, file_values: dict[str, Any], config_path: Path | None) -> str:
    env = "BZZZ_" + key.upper().replace(".", "__")
    if env in os.environ:
        return f"env {env}"
    if key in file_values:
        return f"file {config_path}"
    return "default"


@app.command()
def show(config: ConfigFile = None, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print each setting with its value and its source: env BZZZ_*, the TOML file, or the default."""
    settings = load_config(config)
    path = config or (Path(os.environ["BZZZ_CONFIG"]) if os.environ.get("BZZZ_CONFIG") else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = _flatten(read_file(path))
        except ConfigError as err:  # changed since load_config read it
            fail(str(err), USAGE)
    values = _flatten(settings.model_dump(mode="json"))
    rows = [(key, value, _source(key, file_values, path)) for key, value in values.items()]
    if settings.run_dir is None:
        rows = [
            (k, str(settings.runtime_dir), "default: <data_dir>/run") if k == "run_dir" else (k, v, src)
            for k, v, src in rows
        ]
    if as_json:
        typer.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        typer.echo(f"{key:<{width}}  {json.dumps(value):<40}  {source}")
