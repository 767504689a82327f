"""`bzzz config show`: each value and where it came from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def show(tmp_path: Path, toml: str, **env: str) -> dict[str, dict[str, object]]:
    config = tmp_path / "bzzz.toml"
    config.write_text(toml)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    result = subprocess.run([sys.executable, "-m", "bzzz.cli.main", "config", "show", "--json", "--config", str(config)],
                            capture_output=True, text=True, env={**clean, **env}, timeout=60)
    assert result.returncode == 0, result.stderr
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_each_value_names_its_source_env_over_file_over_default(tmp_path: Path) -> None:
    shown = show(tmp_path, f'data_dir = "{tmp_path}"\n[supervisor]\nmax_restarts = 7\nmax_seconds = 9\n',
                 BZZZ_SUPERVISOR__MAX_SECONDS="12")
    assert shown["supervisor.max_restarts"] == {"value": 7, "source": f"file {tmp_path / 'bzzz.toml'}"}
    assert shown["supervisor.max_seconds"] == {"value": 12.0, "source": "env BZZZ_SUPERVISOR__MAX_SECONDS"}
    assert shown["supervisor.backoff_max_s"]["source"] == "default"
    assert shown["run_dir"] == {"value": str(tmp_path / "run"), "source": "default: <data_dir>/run"}


def test_a_bad_config_is_refused_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text('[supervisor]\nmax_restarts = -1\n')
    result = subprocess.run([sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "max_restarts" in result.stderr


def test_a_relative_data_dir_is_taken_from_where_the_agent_starts(tmp_path: Path) -> None:
    from bzzz.config import AgentConfig

    here = Path.cwd()
    assert AgentConfig(data_dir=Path("agent-data")).data_dir == here / "agent-data"
    assert AgentConfig(data_dir=tmp_path, run_dir=Path("run")).runtime_dir == here / "run"
