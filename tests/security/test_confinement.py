"""Issue 16, items 2 and 6: what a hostile task cannot do to the host from inside the sandbox.

Each test runs the attack for real (real bubblewrap, real cgroups and loop mounts as root) and
proves it ran inside the sandbox: it left a marker in /workspace or printed what we assert on;
where the defence is the sandbox's view, the same read on the host (as the same uid) succeeds.
The unprivileged agent's path runs in a subprocess under `setpriv` as another uid.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.executor.sandbox import SANDBOX_UID, Limits, Sandbox, clean_stale

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="the agent-as-root case (and setpriv to another uid) needs root"
)
pytestmark = needs_bwrap

SANDBOX_PY = Path(__file__).resolve().parents[2] / "python" / "bzzz" / "executor" / "sandbox.py"
AGENT_UID = 70001  # the unprivileged agent of the non-root tests


@pytest.fixture
def parent() -> Iterator[Path]:
    # Under /var/tmp, not pytest's tmp_path: bubblewrap resolves what it binds as the sandbox uid,
    # and /tmp/pytest-of-root is mode 0700.
    made = Path(tempfile.mkdtemp(prefix="bzzz-confinement-", dir="/var/tmp"))
    made.chmod(0o711)
    yield made
    clean_stale(made)
    shutil.rmtree(made, ignore_errors=True)


@pytest.fixture
def exposed() -> Iterator[Path]:
    """A dir of world-readable "agent" files, so that only the sandbox's view can hide them."""
    made = Path(tempfile.mkdtemp(prefix="bzzz-agent-", dir="/var/tmp"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made, ignore_errors=True)


# -- privileges -------------------------------------------------------------------------------


@needs_root
def test_a_task_of_a_root_agent_runs_as_the_sandbox_uid_with_no_capabilities(parent: Path) -> None:
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(
            [
                "sh",
                "-c",
                (
                    "id -u; id -g; id -G; grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' "
                    "/proc/self/status; grep NoNewPrivs /proc/self/status; touch marker"
                ),
            ]
        )
        assert (sandbox.files / "marker").stat().st_uid == SANDBOX_UID
        assert f"uid {SANDBOX_UID}, no capabilities" in sandbox.confinement
    lines = result.stdout.split("\n")
    assert lines[:3] == [str(SANDBOX_UID)] * 3
    caps = dict(line.split(":\t") for line in lines[3:8])
    assert caps == {name: "0000000000000000" for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    assert lines[8] == "NoNewPrivs:\t1"


@needs_root
def test_a_task_cannot_unmount_or_remount_its_way_to_a_hidden_file_or_the_hosts_etc(parent: Path) -> None:
    # A token file the task's uid could read, under a tree the sandbox mounts (/opt): only the
    # cover over it keeps it out.
    secret_dir = Path(f"/opt/bzzz-test-{secrets.token_hex(4)}")
    secret_dir.mkdir(mode=0o755)
    token = secret_dir / "github-token"
    token.write_text("ghp_hidden_token\n")
    token.chmod(0o644)
    keys = secret_dir / "keys"
    keys.mkdir(mode=0o755)
    (keys / "identity.key").write_text("hidden key\n")
    (keys / "identity.key").chmod(0o644)
    probe = Path("/etc") / f"bzzz-probe-{secrets.token_hex(4)}"
    try:
        host = _as_uid(SANDBOX_UID, ["cat", str(token), str(keys / "identity.key")])
        assert "ghp_hidden_token" in host.stdout and "hidden key" in host.stdout  # control: readable unhidden
        attack = (
            f"cat {token}; ls {keys}; umount -l {token}; umount -l {keys}; umount -l /tmp; umount -l /opt; "
            f"mount -o remount,rw /; mount -o remount,rw /etc; mount -t tmpfs x /mnt; "
            f"cat {token} {keys}/identity.key; echo x > {probe}; echo ran > /workspace/marker"
        )
        with Sandbox.open(parent, hidden=[token, keys]) as sandbox:
            result = sandbox.run(["sh", "-c", attack])
            assert (sandbox.files / "marker").read_text() == "ran\n"
        said = result.stdout + result.stderr
        assert "ghp_hidden_token" not in said and "hidden key" not in said
        assert "identity.key" not in result.stdout  # the covered dir lists empty
        assert "must be superuser" in result.stderr  # umount and mount were really tried
        assert not probe.exists()
    finally:
        shutil.rmtree(secret_dir)
        probe.unlink(missing_ok=True)


@needs_root
def test_the_agents_home_data_dir_run_dir_and_token_are_not_in_the_sandbox(parent: Path, exposed: Path) -> None:
    home, data, run = exposed / "home", exposed / "data", exposed / "run"
    for directory in (home, data, run):
        directory.mkdir(mode=0o755)
    token = exposed / "token"
    token.write_text("ghp_token_in_view\n")
    (data / "identity.key").write_text("key in view\n")
    for file in (token, data / "identity.key"):
        file.chmod(0o644)
    reads = f"cat {token} {data}/identity.key; ls {home} {run} /root /home /run /var /srv /work"
    host = _as_uid(SANDBOX_UID, ["sh", "-c", reads])
    assert "ghp_token_in_view" in host.stdout and "key in view" in host.stdout  # control: the uid could read them
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(["sh", "-c", f"{reads}; echo @@; ls -A /; echo @@; ls -A /var; echo ran > marker"])
        assert (sandbox.files / "marker").exists()
    assert "ghp_token_in_view" not in result.stdout and "key in view" not in result.stdout
    assert result.stderr.count("No such file or directory") >= 7
    _, top, var = result.stdout.split("@@")
    assert set(top.split()) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib32",
        "lib64",
        "libx32",
        "opt",
        "proc",
        "sbin",
        "tmp",
        "usr",
        "var",
        "workspace",
    }
    assert var.split() == ["tmp"]  # /var holds only the scratch link, none of the host's /var


def test_a_task_sees_only_its_own_processes(parent: Path) -> None:
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(
            ["sh", "-c", ("for p in /proc/[0-9]*; do printf '%s ' ${p#/proc/}; tr '\\0' ' ' < $p/cmdline; echo; done")]
        )
    listed = [line.split(" ", 1) for line in result.stdout.splitlines()]
    assert any("for p in" in cmdline for _, cmdline in listed)  # it listed itself
    assert len(listed) <= 4  # bwrap's init, the shell, the reader of the moment
    assert all(int(pid) < 10 for pid, _ in listed)
    assert not any("pytest" in cmdline for _, cmdline in listed)


def test_a_task_cannot_make_nested_user_namespaces_or_write_the_root_or_dev(parent: Path) -> None:
    probe = "unshare -U -r id -u; echo unshare=$?"
    host = _as_uid(SANDBOX_UID, ["sh", "-c", probe]) if os.geteuid() == 0 else _run(["sh", "-c", probe])
    if "unshare=0" not in host.stdout:
        pytest.skip("this host forbids unprivileged user namespaces anyway: no control for the attack")
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(
            [
                "sh",
                "-c",
                (
                    f"{probe}; mkdir /evil; echo x > /dev/evil; "
                    "dd if=/dev/zero of=/dev/shm/fill bs=1M count=256 2>&1; echo ran"
                ),
            ]
        )
    assert "unshare=0" not in result.stdout and result.stdout.endswith("ran\n")
    assert "Read-only file system" in result.stderr
    assert result.stderr.count("Read-only file system") >= 2
    assert "No space left on device" in result.stdout  # /dev/shm is small


# -- processes --------------------------------------------------------------------------------

BOMB = (
    "sh -c 'i=0; while [ $i -lt 2000 ]; do sleep 3021 & i=$((i+1)); done'; "
    "set -- /proc/[0-9]*; echo seen=$#"
)  # counted by a glob: the shell cannot fork any more


@needs_root
def test_a_fork_bomb_is_held_to_the_process_limit_and_nothing_outlives_it(parent: Path) -> None:
    with Sandbox.open(parent, limits=Limits(processes=48)) as sandbox:
        assert "pids" in sandbox.confinement
        result = sandbox.run(["sh", "-c", BOMB])
    seen = int(result.stdout.split("seen=")[1])
    assert 20 <= seen <= 48  # it forked, up to the limit, not 2,000
    assert "fork" in result.stderr.lower()
    assert not _running(b"sleep\x003021\x00")


@needs_root
def test_processes_a_task_leaves_in_the_background_are_gone_when_its_command_ends(parent: Path) -> None:
    with Sandbox.open(parent) as sandbox:
        result = sandbox.run(
            [
                "sh",
                "-c",
                (
                    "setsid sleep 3022 & nohup sleep 3022 >/dev/null 2>&1 & "
                    "(sleep 3022 &) ; sleep 0.5; pgrep -c -x sleep"
                ),
            ]
        )
    assert result.ok and int(result.stdout) == 3  # they were running
    assert not _running(b"sleep\x003022\x00")


@needs_root
def test_memory_across_several_processes_is_held_by_the_tasks_cgroup(parent: Path) -> None:
    each = (
        "python3 -c \"import time; print('started', flush=True); b = bytearray(100 << 20); "
        "time.sleep(15); print('survived', flush=True)\""
    )
    with Sandbox.open(parent, limits=Limits(memory_bytes=256 << 20)) as sandbox:
        assert "memory" in sandbox.confinement
        result = sandbox.run(["sh", "-c", f"for i in 1 2 3 4; do {each} & done; wait"])
    assert result.stdout.count("started") == 4  # each alone fits its own address-space limit
    assert result.stdout.count("survived") < 4
    assert result.killed_for == "memory limit" and not result.ok


@needs_root
def test_cpu_time_across_many_short_processes_is_held_by_the_tasks_cgroup(parent: Path) -> None:
    # Each process spins half a second, far below the per-process limit: only the total can stop it.
    spin = (
        'python3 -c "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\n'
        "print('spun', flush=True)\""
    )
    with Sandbox.open(parent, limits=Limits(cpu_s=3, wall_s=600)) as sandbox:
        assert "cpuacct" in sandbox.confinement
        result = sandbox.run(["sh", "-c", f"while :; do {spin}; done"])
    assert result.stdout.count("spun") >= 2
    assert result.killed_for == "cpu limit" and not result.timed_out and "cpu limit" in result.describe()


# -- disk -------------------------------------------------------------------------------------


@needs_root
def test_writing_four_times_the_disk_budget_fails_with_enospc_at_the_budget(parent: Path) -> None:
    budget = 32 << 20
    with Sandbox.open(parent, limits=Limits(disk_bytes=budget)) as sandbox:
        assert "loop-mounted ext4" in sandbox.confinement
        image = sandbox.area.with_name(sandbox.area.name + ".img")
        result = sandbox.run(
            ["sh", "-c", ("dd if=/dev/zero of=big bs=1M count=128; dd if=/dev/zero of=/tmp/more bs=1M count=128")]
        )
        written = (sandbox.files / "big").stat().st_size
        assert budget // 2 < written <= budget  # it wrote until the area was full
        assert result.stderr.count("No space left on device") == 2
        assert image.stat().st_blocks * 512 <= budget  # all the host's disk it took
    assert not image.exists() and not sandbox.area.exists()


@needs_root
def test_the_disk_watchdog_kills_a_task_that_writes_past_its_budget(parent: Path) -> None:
    budget = 32 << 20
    writer = "i=0; while :; do dd if=/dev/zero of=chunk$i bs=1M count=1 2>/dev/null; i=$((i+1)); sleep 0.05; done"
    with Sandbox.open(parent, limits=Limits(disk_bytes=budget, wall_s=600), loop_disk=False) as sandbox:
        assert "watched" in sandbox.confinement
        result = sandbox.run(["sh", "-c", writer])
        chunks = len(list(sandbox.files.glob("chunk*")))
    assert chunks >= 16  # it wrote
    assert chunks < 4 * budget >> 20  # and was stopped long before four times its budget
    assert result.killed_for == "disk limit" and not result.timed_out and "disk limit" in result.describe()


@needs_root
def test_tmp_is_on_disk_in_the_tasks_area_and_gone_after_close(parent: Path) -> None:
    sandbox = Sandbox.open(parent, limits=Limits(disk_bytes=32 << 20))
    result = sandbox.run(["sh", "-c", "echo scratch > /tmp/probe; stat -f -c %T /tmp; echo $HOME $TMPDIR"])
    assert result.ok and result.stdout == "ext2/ext3\n/tmp/home /tmp\n"
    assert (sandbox.area / "tmp" / "probe").read_text() == "scratch\n"
    sandbox.close()
    assert not sandbox.area.exists()
    assert str(sandbox.area) not in Path("/proc/self/mountinfo").read_text()


@needs_root
def test_files_the_host_wrote_become_the_tasks_and_no_link_is_followed_doing_so(parent: Path, exposed: Path) -> None:
    outside = exposed / "host-file"
    outside.write_text("host\n")
    with Sandbox.open(parent) as sandbox:
        (sandbox.files / "sub").mkdir()
        (sandbox.files / "sub" / "given.txt").write_text("from the host\n")  # written as root
        (sandbox.files / "link").symlink_to(outside)
        result = sandbox.run(["sh", "-c", "echo changed >> sub/given.txt && cat sub/given.txt"])
        assert result.ok and result.stdout == "from the host\nchanged\n"
        assert (sandbox.files / "link").lstat().st_uid == SANDBOX_UID
    assert outside.stat().st_uid == 0 and outside.read_text() == "host\n"


# -- clean-up after a killed executor ---------------------------------------------------------


@needs_root
def test_clean_stale_removes_the_mounted_area_and_cgroup_a_killed_executor_left(parent: Path) -> None:
    keep = parent / "bzzz-12-alice-k3j9x_2a"  # a workspace clone of the agent's: not an area
    keep.mkdir()
    executor = textwrap.dedent(f"""
        import os, signal, sys, threading, time
        from pathlib import Path
        from bzzz.executor.sandbox import Sandbox
        sandbox = Sandbox.open(Path({str(parent)!r}), name="task-9")
        threading.Thread(target=sandbox.run, args=(["sh", "-c", "echo ran > marker; sleep 3023"],), daemon=True).start()
        while not (sandbox.files / "marker").exists():
            time.sleep(0.05)
        print(sandbox.area, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    killed = subprocess.run([sys.executable, "-c", executor], check=False, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL
    area = Path(killed.stdout.strip().splitlines()[-1])
    cgroup = Path("/sys/fs/cgroup/pids") / "bzzz" / area.name
    assert (area / "files" / "marker").read_text() == "ran\n"  # it was mid-task
    assert _mounted(area) and area.with_name(area.name + ".img").exists()

    removed = clean_stale(parent)

    assert set(removed) == {area, area.with_name(area.name + ".img")}
    assert not _mounted(area) and not area.exists() and not area.with_name(area.name + ".img").exists()
    assert not cgroup.exists()
    assert keep.is_dir()
    assert not _running(b"sleep\x003023\x00")
    assert clean_stale(parent) == []


# -- an agent that is not root ----------------------------------------------------------------


@pytest.fixture
def agent_parent() -> Iterator[Path]:
    made = Path(tempfile.mkdtemp(prefix="bzzz-agent-work-", dir="/var/tmp"))
    os.chown(made, AGENT_UID, AGENT_UID)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def _as_agent(agent_parent: Path, body: str) -> dict[str, object]:
    """Run `body` (with Sandbox, Limits, parent and report(dict) in scope) as an unprivileged agent."""
    python = "/usr/bin/python3"
    if not Path(python).exists():
        pytest.skip("no system python3 for the unprivileged agent")
    site = next(p for p in sys.path if p.endswith("site-packages") and "structlog" in os.listdir(p))
    prologue = textwrap.dedent(f"""
        import importlib.util, json, sys
        from pathlib import Path
        sys.path.append({site!r})
        spec = importlib.util.spec_from_file_location("bzzz_sandbox", {str(SANDBOX_PY)!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["bzzz_sandbox"] = module
        spec.loader.exec_module(module)
        Sandbox, Limits, parent = module.Sandbox, module.Limits, Path({str(agent_parent)!r})
        def report(value):
            print("REPORT " + json.dumps(value), flush=True)
    """)
    done = _as_uid(AGENT_UID, [python, "-c", prologue + textwrap.dedent(body)], cwd=str(agent_parent))
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert lines, done.stdout + done.stderr
    report = json.loads(lines[-1][len("REPORT ") :])
    assert isinstance(report, dict)
    return report


@needs_root
def test_an_unprivileged_agents_task_has_no_capabilities_and_cannot_see_the_agents_files(agent_parent: Path) -> None:
    secret = agent_parent / "agent-data"
    secret.mkdir(mode=0o700)
    (secret / "identity.key").write_text("the agent's own key\n")
    for path in (secret, secret / "identity.key"):
        os.chown(path, AGENT_UID, AGENT_UID)
    got = _as_agent(
        agent_parent,
        f"""
        with Sandbox.open(parent) as sandbox:
            host = open({str(secret / "identity.key")!r}).read()
            result = sandbox.run(["sh", "-c", ("id -u; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status; "
                                              "cat {secret}/identity.key; echo ran > marker")])
            report({{"host": host, "out": result.stdout, "err": result.stderr, "confinement": sandbox.confinement,
                    "marker": (sandbox.files / "marker").exists()}})
    """,
    )
    assert got["host"] == "the agent's own key\n"  # control: the agent's uid reads it on the host
    assert got["marker"] is True
    out = str(got["out"]).splitlines()
    assert out[0] == str(AGENT_UID) and all(line.endswith("0000000000000000") for line in out[1:4])
    assert "the agent's own key" not in str(got["out"]) and "No such file" in str(got["err"])
    assert "the agent's own uid" in str(got["confinement"])


@needs_root
def test_an_unprivileged_agents_fork_bomb_is_held_and_nothing_outlives_it(agent_parent: Path) -> None:
    got = _as_agent(
        agent_parent,
        f"""
        with Sandbox.open(parent, limits=Limits(processes=48)) as sandbox:
            result = sandbox.run(["sh", "-c", {BOMB!r}])
            report({{"out": result.stdout, "err": result.stderr, "confinement": sandbox.confinement}})
    """,
    )
    assert "RLIMIT_NPROC" in str(got["confinement"])
    seen = int(str(got["out"]).split("seen=")[1])
    assert 20 <= seen <= 48
    assert not _running(b"sleep\x003021\x00")


@needs_root
def test_an_unprivileged_agents_task_is_stopped_by_the_disk_watchdog(agent_parent: Path) -> None:
    writer = "i=0; while :; do dd if=/dev/zero of=/tmp/chunk$i bs=1M count=1 2>/dev/null; i=$((i+1)); sleep 0.05; done"
    got = _as_agent(
        agent_parent,
        f"""
        with Sandbox.open(parent, limits=Limits(disk_bytes=32 << 20, wall_s=600)) as sandbox:
            result = sandbox.run(["sh", "-c", {writer!r}])
            report({{"killed_for": result.killed_for, "chunks": len(list(sandbox.tmp.glob("chunk*"))),
                    "confinement": sandbox.confinement}})
    """,
    )
    assert "watched" in str(got["confinement"])
    assert isinstance(got["chunks"], int) and 16 <= got["chunks"] < 128
    assert got["killed_for"] == "disk limit"
    assert list(agent_parent.iterdir()) == []  # closed: the area is gone


@needs_root
def test_an_unprivileged_agents_task_cannot_hide_its_disk_use_in_a_dir_it_makes_unreadable(agent_parent: Path) -> None:
    hider = "mkdir hide; dd if=/dev/zero of=hide/big bs=1M count=64 2>/dev/null; chmod 000 hide; sleep 3024"
    got = _as_agent(
        agent_parent,
        f"""
        with Sandbox.open(parent, limits=Limits(disk_bytes=32 << 20, wall_s=600)) as sandbox:
            result = sandbox.run(["sh", "-c", {hider!r}])
            report({{"killed_for": result.killed_for, "hidden": (sandbox.files / "hide").is_dir()}})
    """,
    )
    assert got["hidden"] is True  # it ran
    assert got["killed_for"] == "disk limit"
    assert not _running(b"sleep\x003024\x00")


# -- helpers ----------------------------------------------------------------------------------


def _run(
    argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def _as_uid(uid: int, argv: list[str], cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *argv],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
        cwd=cwd,
    )


def _running(cmdline: bytes) -> bool:
    # Give the kernel a moment to finish tearing down a PID namespace (an outcome, not a timing).
    deadline = time.monotonic() + 30
    while True:
        alive = False
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    alive = alive or Path(f"/proc/{pid}/cmdline").read_bytes() == cmdline
                except OSError:
                    pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _mounted(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())
