"""A user's mistake, whatever the command: one line on stderr naming the file or option and the
problem, exit status 2 (bad usage or configuration) or 1 (a failure at run time), no traceback.

Every case runs `bzzz` as an operator does, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

VALID = 'node_id = "walnut"\ndata_dir = "{data}"\n\n[supervisor]\nmax_restarts = 3\n'

# Every command that takes --config; each reads the file before anything else.
CONFIG_COMMANDS = [
    ["agent", "run"],
    ["config", "show"],
    ["ctl", "status"],
    ["ctl", "start", "log"],
    ["ctl", "stop", "log"],
    ["ctl", "restart", "log"],
    ["ctl", "logs", "log"],
    ["ctl", "shutdown"],
    ["mesh", "peers"],
    ["mesh", "status"],
]


# Root reads any file by its capabilities; without these two it is denied like anyone else, yet
# still reaches the checkout (another uid could not, where the checkout is private to root).
NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


def bzzz(*args: str, denied: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    prefix = NO_DAC if denied and os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bzzz.cli.main", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
    )


def refused(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    """The one line a refusal prints, after checking it is exactly that."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bzzz: error: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    config = tmp_path / "bzzz.toml"
    config.write_text(VALID.format(data=tmp_path / "data"))
    return config


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
def test_a_config_with_a_toml_syntax_error_is_refused_with_its_file_and_line(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text('node_id = "walnut"\n\ndata_dir "/var/lib/bzzz"\n')
    with pytest.raises(tomllib.TOMLDecodeError):  # the fault is real
        tomllib.loads(config.read_text())
    line = refused(bzzz(*command, "--config", str(config)), 2, f"{config} line 3", "Expected '='")
    assert "column" in line


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
def test_a_config_that_is_not_utf8_is_refused_with_its_file_and_line(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_bytes(b'node_id = "walnut"\nnode_id = "\xff\xfe"\n')
    with pytest.raises(UnicodeDecodeError):
        config.read_text(encoding="utf-8")
    refused(bzzz(*command, "--config", str(config)), 2, f"{config} line 2", "not UTF-8", "0xff")


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
def test_a_config_path_that_is_a_directory_or_missing_is_refused(tmp_path: Path, command: list[str]) -> None:
    refused(bzzz(*command, "--config", str(tmp_path)), 2, str(tmp_path), "is a directory")
    missing = tmp_path / "nowhere.toml"
    refused(bzzz(*command, "--config", str(missing)), 2, str(missing), "no such config file")
    # The same file named by the environment instead of the option.
    refused(bzzz(*command, BZZZ_CONFIG=str(missing)), 2, str(missing), "no such config file")


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A config file its reader may not read (as root, the reader runs without the capabilities
    that let root read anything)."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root reads every file")
    config = tmp_path / "bzzz.toml"
    config.write_text(VALID.format(data=tmp_path / "data"))
    config.chmod(0)
    return config


@pytest.mark.parametrize("command", CONFIG_COMMANDS, ids=" ".join)
def test_an_unreadable_config_is_refused(unreadable: Path, command: list[str]) -> None:
    config = unreadable
    shown = bzzz("config", "show", "--config", str(config), denied=True)
    refused(shown, 2, str(config), "not readable")  # the fault is real: this reader cannot read it
    config.chmod(0o644)
    assert bzzz("config", "show", "--config", str(config), denied=True).returncode == 0, "readable, it is fine"
    config.chmod(0)
    refused(bzzz(*command, "--config", str(config), denied=True), 2, str(config))


def test_an_invalid_value_is_one_line_naming_the_setting_and_where_it_came_from(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text("[supervisor]\nmax_restarts = -1\n")
    line = refused(
        bzzz("config", "show", "--config", str(config)),
        2,
        str(config),
        "invalid configuration",
        "supervisor.max_restarts",
        "-1",
    )
    assert "env" not in line
    refused(
        bzzz("config", "show", "--config", str(config), BZZZ_SUPERVISOR__MAX_SECONDS="soon"),
        2,
        "supervisor.max_seconds (env BZZZ_SUPERVISOR__MAX_SECONDS)",
        "'soon'",
        "supervisor.max_restarts",
    )
    refused(bzzz("config", "show", BZZZ_WORKERS="not json"), 2, "environment", "workers")


def test_the_valid_config_works_for_every_command_that_reads_it(tmp_path: Path, valid: Path) -> None:
    shown = bzzz("config", "show", "--config", str(valid))
    assert shown.returncode == 0 and "supervisor.max_restarts" in shown.stdout and shown.stderr == ""
    # With no agent running, ctl and mesh get as far as looking for it: a failure at run time, status 1.
    for command in CONFIG_COMMANDS[2:]:
        refused(bzzz(*command, "--config", str(valid)), 1, str(tmp_path / "data" / "run"))


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "log"
    assert bzzz("log", "create", "--dir", str(directory)).returncode == 0
    assert bzzz("log", "append", "--dir", str(directory), "a", "b", "c").returncode == 0
    return directory


@pytest.mark.parametrize(
    "options, words",
    [
        (["--from", "-5"], ["--from", "-5", "not in the range"]),
        (["--to", "-1"], ["--to", "-1"]),
        (["--tail", "-2"], ["--tail", "-2"]),
        (["--from", "x"], ["--from", "'x' is not a valid integer"]),
        (["--from", "10"], ["--from 10", "past the end", "3 entries"]),
        (["--from", "2", "--to", "1"], ["--to 1 is before --from 2"]),
        (["--tail", "1", "--from", "1"], ["--tail", "--from"]),
        (["--fro", "1"], ["--fro"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("-") else "",
)
def test_log_show_refuses_a_bad_range_in_one_line(log_dir: Path, options: list[str], words: list[str]) -> None:
    refused(bzzz("log", "show", "--dir", str(log_dir), *options), 2, *words)


def test_log_show_prints_a_good_range(log_dir: Path) -> None:
    shown = bzzz("log", "show", "--dir", str(log_dir), "--from", "1", "--to", "2")
    assert shown.returncode == 0, shown.stderr
    assert [line.split()[-1] for line in shown.stdout.splitlines() if line.startswith("#")] == ["b"]
    at_end = bzzz("log", "show", "--dir", str(log_dir), "--from", "3")
    assert at_end.returncode == 0 and "#" not in at_end.stdout


def test_log_commands_refuse_a_bad_index_or_directory_in_one_line(tmp_path: Path, log_dir: Path) -> None:
    refused(bzzz("log", "proof", "--dir", str(log_dir), "--", "-1"), 2, "-1")
    refused(bzzz("log", "proof", "--dir", str(log_dir), "99"), 1, "99", "out of range")
    for command in (["show"], ["verify"], ["append", "x"], ["proof", "0"]):
        refused(bzzz("log", *command, "--dir", str(tmp_path / "missing")), 1, str(tmp_path / "missing"))
        refused(bzzz("log", *command, "--dir", str(tmp_path)), 1, f"no log in {tmp_path}")  # not a log dir
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused(bzzz("log", "create", "--dir", str(a_file / "log")), 2, str(a_file / "log"))
    refused(bzzz("log", "create", "--dir", "/proc/bzzz-log"), 2, "/proc/bzzz-log")
    refused(bzzz("log", "show", "00"), 2, "64 hex digits")
    refused(bzzz("log", "check-proof", "00", str(tmp_path / "no-proof.json")), 2, "no-proof.json")
    refused(bzzz("log", "demo", "--dir", "/proc/bzzz-demo"), 2, "/proc/bzzz-demo")
    refused(bzzz("log", "demo", "--entries", "0"), 2, "--entries")
    refused(bzzz("log", "replicate", "ab" * 32, "--timeout", "-1"), 2, "--timeout")


def test_forge_refuses_a_data_dir_it_cannot_create_or_write(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for command in (["serve", "--port", "0"], ["seed", str(a_file)]):
        refused(bzzz("forge", *command, "--data", "/proc/x"), 2, "--data /proc/x", "cannot create it")
        refused(bzzz("forge", *command, "--data", str(a_file)), 2, f"--data {a_file}", "not a directory")


def test_the_demo_refuses_a_folder_it_cannot_create(tmp_path: Path) -> None:
    refused(bzzz("demo", "--dir", "/proc/bzzz-demo", "--timeout", "1"), 2, "--dir", "/proc/bzzz-demo")


def test_the_demo_refuses_a_monitor_address_that_is_not_host_and_port(tmp_path: Path) -> None:
    for bad in ("nonsense", "127.0.0.1:99999", ":8700"):
        refused(bzzz("demo", "--http", bad, "--dir", str(tmp_path / "d")), 2, "--http", "HOST:PORT")
    assert not (tmp_path / "d").exists()  # refused before anything was started or created


def test_a_mistyped_command_or_option_is_one_line_that_points_to_help() -> None:
    refused(bzzz("lgo"), 2, "No such command 'lgo'", "bzzz --help")
    refused(bzzz("ctl", "logs", "log", "-n", "-1"), 2, "ctl logs", "-n", "bzzz ctl logs --help")
    helped = bzzz("ctl")  # a group without a command: its help, as before
    assert helped.returncode == 2 and "status" in helped.stderr and "Traceback" not in helped.stderr
