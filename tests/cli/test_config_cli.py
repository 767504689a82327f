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
    result = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    parsed: dict[str, dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_each_value_names_its_source_env_over_file_over_default(tmp_path: Path) -> None:
    shown = show(
        tmp_path,
        f'data_dir = "{tmp_path}"\n[supervisor]\nmax_restarts = 7\nmax_seconds = 9\n',
        BZZZ_SUPERVISOR__MAX_SECONDS="12",
    )
    assert shown["supervisor.max_restarts"] == {"value": 7, "source": f"file {tmp_path / 'bzzz.toml'}"}
    assert shown["supervisor.max_seconds"] == {"value": 12.0, "source": "env BZZZ_SUPERVISOR__MAX_SECONDS"}
    assert shown["supervisor.backoff_max_s"]["source"] == "default"
    assert shown["run_dir"] == {"value": str(tmp_path / "run"), "source": "default: <data_dir>/run"}


def test_a_bad_config_is_refused_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text("[supervisor]\nmax_restarts = -1\n")
    result = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "max_restarts" in result.stderr


def test_a_relative_data_dir_is_taken_from_where_the_agent_starts(tmp_path: Path) -> None:
    from bzzz.config import AgentConfig

    here = Path.cwd()
    assert AgentConfig(data_dir=Path("agent-data")).data_dir == here / "agent-data"
    assert AgentConfig(data_dir=tmp_path, run_dir=Path("run")).runtime_dir == here / "run"


def refused(tmp_path: Path, toml: str) -> str:
    config = tmp_path / "bzzz.toml"
    config.write_text(toml)
    result = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


LOG_WORKER = '[workers.log]\nmodule = "bzzz.workers.log"\n'


def test_a_built_in_workers_settings_are_shown_each_with_its_source(tmp_path: Path) -> None:
    shown = show(
        tmp_path,
        LOG_WORKER + "[workers.log.settings]\nretention_s = 60\n",
        BZZZ_WORKERS__LOG__SETTINGS__PRUNE_EVERY_S="30",
    )
    assert shown["workers.log.settings.retention_s"] == {"value": 60.0, "source": f"file {tmp_path / 'bzzz.toml'}"}
    assert shown["workers.log.settings.prune_every_s"] == {
        "value": 30.0,
        "source": "env BZZZ_WORKERS__LOG__SETTINGS__PRUNE_EVERY_S",
    }
    assert show(tmp_path, LOG_WORKER)["workers.log.settings.retention_s"] == {"value": 86400.0, "source": "default"}


def test_a_built_in_workers_bad_or_unknown_setting_is_refused_before_anything_starts(tmp_path: Path) -> None:
    assert "workers.log: settings.retention_s: Input should be greater than 0 (got -1)" in refused(
        tmp_path, LOG_WORKER + "[workers.log.settings]\nretention_s = -1\n"
    )
    assert "settings.retension_s: Extra inputs are not permitted" in refused(
        tmp_path, LOG_WORKER + "[workers.log.settings]\nretension_s = 60\n"
    )
    assert "bzzz.workers.log takes no args" in refused(tmp_path, LOG_WORKER + 'args = ["--retention", "60"]\n')


def test_a_misspelt_key_anywhere_is_refused_not_ignored(tmp_path: Path) -> None:
    assert "supervisor.max_restart: Extra inputs are not permitted" in refused(
        tmp_path, "[supervisor]\nmax_restart = 3\n"
    )
    assert "workers.log.heartbeat_timeout: Extra inputs are not permitted" in refused(
        tmp_path, LOG_WORKER + "heartbeat_timeout = 3\n"
    )
    # Positive control: the same files with the keys spelt right are accepted.
    show(tmp_path, "[supervisor]\nmax_restarts = 3\n")
    show(tmp_path, LOG_WORKER + "heartbeat_timeout_s = 3\n")


def test_a_module_of_your_own_gets_its_settings_unchecked_and_its_args(tmp_path: Path) -> None:
    shown = show(
        tmp_path, '[workers.mine]\nmodule = "my.worker"\nargs = ["--x"]\n[workers.mine.settings]\nanything = 1\n'
    )
    assert shown["workers.mine.settings.anything"]["value"] == 1
    assert shown["workers.mine.args"]["value"] == ["--x"]
