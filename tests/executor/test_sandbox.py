"""What a task's command can and cannot do in the sandbox (real bubblewrap, real processes).

The hostile variants (capabilities, mounts, fork bombs, disk, cgroups, clean-up after a killed
executor) are in tests/security/test_confinement.py; these are the everyday behaviours.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.executor.sandbox import Limits, Result, Sandbox, SandboxUnavailable, clean_stale

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a dir the sandbox uid cannot pass")


@pytest.fixture
def parent() -> Iterator[Path]:
    # Not under pytest's tmp_path: as root, /tmp/pytest-of-root is mode 0700, and bubblewrap
    # resolves the paths it binds as the (unprivileged) sandbox uid.
    made = Path(tempfile.mkdtemp(prefix="bzzz-sandbox-test-", dir="/var/tmp"))
    made.chmod(0o711)
    yield made
    clean_stale(made)
    shutil.rmtree(made, ignore_errors=True)


@needs_bwrap
def test_a_command_writes_its_workspace_and_nothing_else(parent: Path) -> None:
    elsewhere = Path("/var/tmp") / f"bzzz-sandbox-probe-{os.getpid()}"
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(["sh", "-c", f"echo made > out.txt; pwd; echo x > {elsewhere}; echo x > /usr/probe"])
        assert (sandbox.files / "out.txt").read_text() == "made\n"
        assert result.stdout == "/workspace\n"
        assert "Read-only file system" in result.stderr and result.returncode != 0
        # the sandbox's /var/tmp is its own scratch area, not the host's
        assert (sandbox.tmp / elsewhere.name).read_text() == "x\n"
    assert not elsewhere.exists() and not Path("/usr/probe").exists()


@needs_bwrap
def test_the_agents_environment_and_token_never_reach_a_command(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "secrets" / "github-token"
    token_file.parent.mkdir()
    token_file.write_text("ghp_secret\n")
    data_dir = tmp_path / "agent"
    (data_dir / "mesh").mkdir(parents=True)
    (data_dir / "mesh" / "identity.key").write_text("secret key\n")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    with Sandbox.open(parent, hidden=[token_file, data_dir]) as sandbox:
        result = sandbox.run(
            ["sh", "-c", f'echo "env=[$GITHUB_TOKEN]"; cat {token_file}; ls -A {data_dir}; env'], env={"TASK": "42"}
        )
    assert "ghp_secret" not in result.stdout + result.stderr
    assert "env=[]" in result.stdout and "TASK=42" in result.stdout and "HOME=/tmp/home" in result.stdout
    assert "identity.key" not in result.stdout


@needs_bwrap
def test_no_network_unless_the_config_allows_it(parent: Path) -> None:
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
        with Sandbox.open(parent) as closed_box:
            closed = closed_box.run(connect)
        assert closed.returncode != 0 and "reached" not in closed.stdout
        with Sandbox.open(parent, network=True) as open_box:
            opened = open_box.run(connect)
        assert opened.ok and "reached" in opened.stdout
    finally:
        server.close()


@needs_bwrap
def test_a_command_past_its_time_is_killed_with_everything_it_started(parent: Path) -> None:
    with Sandbox.open(parent, limits=Limits(wall_s=1.0)) as sandbox:
        result = sandbox.run(["sh", "-c", "sleep 3011 & echo started > started; sleep 3011"])
        assert (sandbox.files / "started").exists()  # it ran
    assert result.timed_out and result.killed_for == "time limit" and not result.ok
    assert "time limit" in result.describe()
    assert not _running(b"sleep\x003011\x00")


@needs_bwrap
def test_a_shorter_timeout_for_one_run_wins_over_the_limit(parent: Path) -> None:
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(["sh", "-c", "echo started; sleep 3012"], timeout_s=1.0)
    assert result.timed_out and result.stdout == "started\n"
    assert not _running(b"sleep\x003012\x00")


@needs_bwrap
def test_cpu_and_memory_are_limited_per_process(parent: Path) -> None:
    with Sandbox.open(parent, limits=Limits(cpu_s=1)) as sandbox:
        spin = sandbox.run(["python3", "-c", "print('spinning', flush=True)\nwhile True: pass"])
    assert spin.stdout == "spinning\n" and spin.returncode < 0 and not spin.timed_out  # SIGXCPU or SIGKILL
    with Sandbox.open(parent, limits=Limits(memory_bytes=256 << 20)) as sandbox:
        hog = sandbox.run(["python3", "-c", "print('allocating', flush=True); b = bytearray(1 << 30)"])
    assert hog.stdout == "allocating\n" and hog.returncode != 0 and "MemoryError" in hog.stderr


@needs_bwrap
def test_stdin_reaches_the_command_and_output_past_the_cap_is_cut_in_the_middle(parent: Path) -> None:
    with Sandbox.open(parent, limits=Limits(output_bytes=4096)) as sandbox:
        echoed = sandbox.run(["cat"], stdin="fed in\n")
        flood = sandbox.run(["sh", "-c", "echo FIRST; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo LAST"])
    assert echoed.ok and echoed.stdout == "fed in\n"
    assert flood.ok and flood.stdout.startswith("FIRST\n") and flood.stdout.endswith("LAST\n")
    assert "bytes of output left out" in flood.stdout and len(flood.stdout) < 8192


@needs_bwrap
def test_the_workspace_persists_between_runs_and_the_area_is_gone_after_close(parent: Path) -> None:
    sandbox = Sandbox.open(parent, name="task-7")
    assert sandbox.area.parent == parent and sandbox.area.name.startswith("task-7-sandbox-")
    (sandbox.files / "given").write_text("from the host\n")  # as the agent: root, if it is
    first = sandbox.run(["sh", "-c", "cat given; echo more >> given; echo kept > /tmp/kept"])
    second = sandbox.run(["sh", "-c", "cat given /tmp/kept"])
    sandbox.close()
    sandbox.close()  # idempotent
    assert first.ok and first.stdout == "from the host\n"
    assert second.ok and second.stdout == "from the host\nmore\nkept\n"
    assert not sandbox.area.exists() and list(parent.iterdir()) == []


def test_a_result_says_why_a_command_was_stopped() -> None:
    stopped = Result(("dd",), -9, "", "", False, 3.2, "disk limit")
    assert not stopped.ok and stopped.describe() == "`dd` was stopped after 3 s (disk limit)"
    assert Result(("x",), -9, "", "", False, 1.0).describe() == "`x` was killed by SIGKILL"
    assert Result(("x",), 3, "", "", False, 1.0).describe() == "`x` exited with status 3"


def test_without_bubblewrap_untrusted_commands_are_refused(parent: Path) -> None:
    with pytest.raises(SandboxUnavailable, match="install it"):
        Sandbox.open(parent, bwrap=None)
    assert list(parent.iterdir()) == []


@needs_root
@needs_bwrap
def test_a_work_dir_under_a_dir_only_root_may_pass_still_works(tmp_path: Path) -> None:
    locked = tmp_path / "locked"  # as /root or a mkdtemp dir: the sandbox uid may not pass
    locked.mkdir(mode=0o700)
    with Sandbox.open(locked / "work") as sandbox:
        result = sandbox.run(["sh", "-c", "echo made > out; echo scratch > /tmp/t; cat /tmp/t"])
        assert (sandbox.files / "out").read_text() == "made\n"
    assert result.ok and result.stdout == "scratch\n"


@needs_root
def test_an_unsandboxed_task_needs_a_work_dir_its_uid_may_pass(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    with pytest.raises(SandboxUnavailable, match="chmod o\\+x"):
        Sandbox.open(locked / "work", bwrap=None, allow_unsandboxed=True)


def test_an_operator_may_opt_in_to_running_without_isolation_and_keeps_the_clean_environment(
    parent: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    with Sandbox.open(parent, bwrap=None, allow_unsandboxed=True) as sandbox:
        assert not sandbox.isolated and "NOT isolated" in sandbox.confinement
        result = sandbox.run(["sh", "-c", 'echo "[$GITHUB_TOKEN]" > seen; cat seen'])
        assert (sandbox.files / "seen").exists()
    assert result.stdout == "[]\n"


def _running(cmdline: bytes) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline:
                    return True
            except OSError:
                pass
    return False
