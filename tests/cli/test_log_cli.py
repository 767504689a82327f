"""`bzzz log`, run as an operator runs it: the installed command, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def bzzz(
    *args: str, data_dir: Path, stdin: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BZZZ_DATA_DIR": str(data_dir)}
    env.pop("BZZZ_LOG_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def created(data_dir: Path) -> dict:
    result = bzzz("log", "create", "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_explains_every_log_command(data_dir: Path) -> None:
    top = bzzz("--help", data_dir=data_dir)
    assert top.returncode == 0 and "log" in top.stdout
    sub = bzzz("log", "--help", data_dir=data_dir)
    for command in ("create", "append", "show", "verify", "proof", "check-proof", "demo"):
        assert command in sub.stdout
    assert "BZZZ_LOG_DIR" in bzzz("log", "show", "--help", data_dir=data_dir).stdout


def test_create_makes_an_empty_log_under_the_data_dir_with_a_private_key_file(data_dir: Path, created: dict) -> None:
    assert created["length"] == 0 and created["signature"] is None
    assert created["mode"] == "manifest" and created["key"] != created["public_key"]
    assert len(bytes.fromhex(created["key"])) == 32
    assert (data_dir / "log" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_create_in_compat_mode_keys_the_log_by_its_public_key(tmp_path: Path) -> None:
    result = bzzz("log", "create", "--compat", "--json", data_dir=tmp_path)
    summary = json.loads(result.stdout)
    assert summary["mode"] == "compat" and summary["key"] == summary["public_key"]
    bzzz("log", "append", "one", data_dir=tmp_path)
    proof = bzzz("log", "proof", "0", data_dir=tmp_path).stdout
    checked = bzzz("log", "check-proof", summary["public_key"], "-", data_dir=tmp_path, stdin=proof)
    assert checked.returncode == 0 and checked.stdout.splitlines()[-1] == "one"


def test_create_refuses_to_overwrite_a_log(data_dir: Path, created: dict) -> None:
    again = bzzz("log", "create", data_dir=data_dir)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_append_then_show_reads_entries_back(data_dir: Path, created: dict) -> None:
    assert bzzz("log", "append", "first", "second", data_dir=data_dir).returncode == 0
    assert bzzz("log", "append", "--stdin", data_dir=data_dir, stdin="third\nfourth\n").returncode == 0
    assert bzzz("log", "append", "--event", "note", "hello", data_dir=data_dir).returncode == 0
    shown = bzzz("log", "show", "--json", data_dir=data_dir)
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [r["entry"] for r in rows[:4]] == ["first", "second", "third", "fourth"]
    assert rows[4]["entry"]["type"] == "note" and rows[4]["entry"]["text"] == "hello"
    text = bzzz("log", "show", "--tail", "1", data_dir=data_dir).stdout
    assert "key" in text and created["key"] in text and "note" in text and "first" not in text


def test_append_with_nothing_to_append_is_a_usage_error(data_dir: Path, created: dict) -> None:
    result = bzzz("log", "append", data_dir=data_dir)
    assert result.returncode == 2 and "nothing to append" in result.stderr


def test_verify_passes_on_a_good_log_and_fails_on_a_tampered_one(data_dir: Path, created: dict) -> None:
    bzzz("log", "append", "alpha", "beta", "gamma", data_dir=data_dir)
    ok = bzzz("log", "verify", data_dir=data_dir)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 3 entries")
    data = data_dir / "log" / "hypercore" / "data"
    data.write_bytes(data.read_bytes().replace(b"alpha", b"alphA"))
    bad = bzzz("log", "verify", data_dir=data_dir)
    assert bad.returncode == 1 and "verification failed" in bad.stderr


def test_a_proof_checks_out_with_only_the_key(data_dir: Path, created: dict, tmp_path: Path) -> None:
    bzzz("log", "append", "alpha", "beta", "gamma", data_dir=data_dir)
    proof = bzzz("log", "proof", "1", data_dir=data_dir)
    assert proof.returncode == 0
    checked = bzzz(
        "log", "check-proof", created["public_key"], "-", data_dir=tmp_path / "elsewhere", stdin=proof.stdout
    )
    assert checked.returncode == 0 and checked.stdout.splitlines()[-1] == "beta"
    assert created["key"] in checked.stdout
    stranger = "11" * 32
    refused = bzzz("log", "check-proof", stranger, "-", data_dir=data_dir, stdin=proof.stdout)
    assert refused.returncode == 1 and "error" in refused.stderr


def test_a_missing_log_says_how_to_create_one(data_dir: Path) -> None:
    result = bzzz("log", "show", data_dir=data_dir)
    assert result.returncode == 1 and "bzzz log create" in result.stderr


def test_a_key_file_others_can_read_is_refused(data_dir: Path, created: dict) -> None:
    (data_dir / "log" / "secret_key").chmod(0o644)
    result = bzzz("log", "append", "x", data_dir=data_dir)
    assert result.returncode == 1 and "chmod 600" in result.stderr


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = bzzz("log", "demo", "--entries", "2000", data_dir=tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("kill -9", "cut back to the last signed length", "checks out", "is refused", "summary"):
        assert expected in result.stdout
