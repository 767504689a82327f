"""What a task's command can and cannot do in the sandbox (real bubblewrap, real processes)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import threading
from pathlib import Path

import pytest

from bzzz.executor.sandbox import Limits, Sandbox, SandboxUnavailable

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
PY = sys.executable


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@needs_bwrap
def test_a_command_writes_its_workspace_and_nothing_else(workspace: Path, tmp_path: Path) -> None:
    elsewhere = Path("/var/tmp") / f"bzzz-sandbox-probe-{os.getpid()}"
    result = Sandbox(workspace).run(["sh", "-c", f"echo made > out.txt; echo x > {tmp_path / 'in-tmp'}; "
                                                 f"echo x > {elsewhere}"])
    assert (workspace / "out.txt").read_text() == "made\n"
    assert "Read-only file system" in result.stderr and result.returncode != 0
    assert not elsewhere.exists()
    assert not (tmp_path / "in-tmp").exists()  # /tmp inside is its own, gone with it


@needs_bwrap
def test_the_agents_environment_and_token_never_reach_a_command(workspace: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    token_file = tmp_path / "secrets" / "github-token"
    token_file.parent.mkdir()
    token_file.write_text("ghp_secret\n")
    data_dir = tmp_path / "agent"
    (data_dir / "mesh").mkdir(parents=True)
    (data_dir / "mesh" / "identity.key").write_text("secret key\n")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    sandbox = Sandbox(workspace, hidden=[token_file, data_dir])
    result = sandbox.run(["sh", "-c", f'echo "env=[$GITHUB_TOKEN]"; cat {token_file}; ls -A {data_dir}; env'],
                         env={"TASK": "42"})
    assert "ghp_secret" not in result.stdout + result.stderr
    assert "env=[]" in result.stdout and "TASK=42" in result.stdout
    assert "identity.key" not in result.stdout


@needs_bwrap
def test_no_network_unless_the_config_allows_it(workspace: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    def serve() -> None:
        try:
            while True:
                server.accept()
        except OSError:
            pass  # closed at the end of the test

    threading.Thread(target=serve, daemon=True).start()
    connect = ["python3", "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('reached')"]
    try:
        closed = Sandbox(workspace).run(connect)
        assert closed.returncode != 0 and "reached" not in closed.stdout
        opened = Sandbox(workspace, network=True).run(connect)
        assert opened.ok and "reached" in opened.stdout
    finally:
        server.close()


@needs_bwrap
def test_a_command_past_its_time_is_killed_with_everything_it_started(workspace: Path) -> None:
    result = Sandbox(workspace, limits=Limits(wall_s=1.0)).run(
        ["sh", "-c", "sleep 60 & echo $! > child.pid; sleep 60"])
    assert result.timed_out and not result.ok and "time limit" in result.describe()
    # The child lived in the sandbox's PID namespace, which died with it.
    assert not any(_is_sleep_60(pid) for pid in os.listdir("/proc") if pid.isdigit())


def _is_sleep_60(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x0060\x00"
    except OSError:
        return False


@needs_bwrap
def test_cpu_and_memory_are_limited(workspace: Path) -> None:
    spin = Sandbox(workspace, limits=Limits(cpu_s=1)).run(["python3", "-c", "while True: pass"])
    assert spin.returncode < 0 and not spin.timed_out  # SIGXCPU, then SIGKILL
    hog = Sandbox(workspace, limits=Limits(memory_bytes=256 << 20)).run(
        ["python3", "-c", "b = bytearray(1 << 30)"])
    assert hog.returncode != 0 and "MemoryError" in hog.stderr


def test_without_bubblewrap_untrusted_commands_are_refused(workspace: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="install it"):
        Sandbox(workspace, bwrap=None)


def test_an_operator_may_opt_in_to_running_without_isolation_and_keeps_the_clean_environment(
    workspace: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    sandbox = Sandbox(workspace, bwrap=None, allow_unsandboxed=True)
    assert not sandbox.isolated
    result = sandbox.run(["sh", "-c", 'echo "[$GITHUB_TOKEN]" > seen; cat seen'])
    assert result.stdout == "[]\n"
