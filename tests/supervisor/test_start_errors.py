"""`bzzz agent run` refuses what cannot work in one line (exit 2 for the config, no traceback):
a data dir that is taken by another agent, is a file or cannot be created, a run dir that
cannot be made, a worker module that does not exist; and a Python that can no longer be
executed ends the agent with the reason instead of a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bzzz.paths import DataDir
from bzzz.supervisor import ControlClient, ControlError
from tests.agents import toml_config

PROBE = {"module": "bzzz.testing.probe", "heartbeat_timeout_s": 5.0}


def agent_run(config: Path, python: str = sys.executable) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    return subprocess.Popen(
        [python, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_config(
    path: Path,
    data_dir: Path,
    workers: dict[str, dict[str, Any]] | None = None,
    run_dir: Path | None = None,
    **supervisor: Any,
) -> Path:
    path.write_text(toml_config(data_dir, workers or {"alpha": PROBE}, supervisor, run_dir=run_dir))
    return path


def refused_at_start(config: Path, *words: str, status: int = 2) -> str:
    process = agent_run(config)
    out, err = process.communicate(timeout=60)
    assert process.returncode == status, (out, err)
    assert "Traceback" not in out + err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bzzz: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_a_second_agent_on_the_same_data_dir_is_refused_while_the_first_runs_on(start_agent, tmp_path: Path) -> None:
    first = start_agent({"alpha": PROBE}, name="first")
    alpha = first.wait_running("alpha")
    # Same data dir, its own run dir: the run dir's pid file cannot see the clash; the data dir lock must.
    second = write_config(tmp_path / "second.toml", first.data_dir, run_dir=tmp_path / "second-run")
    line = refused_at_start(second, "another agent", f"pid {first.process.pid}", f"holds the data dir {first.data_dir}")
    assert "Traceback" not in line
    assert not (tmp_path / "second-run").exists(), "the refused agent touched nothing"
    assert first.call("status")["agent"]["pid"] == first.process.pid
    assert first.worker("alpha")["pid"] == alpha["pid"], "the first agent's worker was left alone"


def test_the_lock_dies_with_a_killed_agent_so_the_next_one_starts(start_agent, tmp_path: Path) -> None:
    first = start_agent({"alpha": PROBE}, name="first")
    first.wait_running("alpha")
    second = write_config(tmp_path / "second.toml", first.data_dir, run_dir=tmp_path / "second-run")
    refused_at_start(second, "holds the data dir")  # the lock is really held while the first lives
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    assert (DataDir(first.data_dir).lock).exists(), "nothing cleaned up after the killed agent"
    replacement = start_agent(
        {"alpha": PROBE}, name="replacement", data_dir=first.data_dir, run_dir=tmp_path / "second-run"
    )
    replacement.wait_running("alpha", timeout=30)
    assert int((DataDir(first.data_dir).lock).read_text()) == replacement.process.pid


def open_files(pid: int) -> set[str]:
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except FileNotFoundError:  # closed while we looked
            pass
    return found


def test_only_the_supervisor_holds_the_lock_file_open_and_its_workers_do_not(start_agent) -> None:
    agent = start_agent({"alpha": PROBE})
    worker = agent.wait_running("alpha")
    lock = str(DataDir(agent.data_dir).lock)
    assert lock in open_files(agent.process.pid)  # the control: the supervisor has it open
    assert lock not in open_files(worker["pid"])


def test_a_data_dir_that_is_a_file_or_cannot_be_created_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused_at_start(write_config(tmp_path / "1.toml", a_file), f"data dir {a_file}", "not a directory")
    refused_at_start(
        write_config(tmp_path / "2.toml", a_file / "data"), f"data dir {a_file / 'data'}", "Not a directory"
    )
    refused_at_start(
        write_config(tmp_path / "3.toml", Path("/proc/bzzz-data")), "data dir /proc/bzzz-data", "cannot create it"
    )


def test_a_run_dir_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    refused_at_start(
        write_config(tmp_path / "1.toml", tmp_path / "data", run_dir=a_file), f"run dir {a_file}", "not a directory"
    )
    refused_at_start(
        write_config(tmp_path / "2.toml", tmp_path / "data", run_dir=a_file / "run"),
        f"run dir {a_file / 'run'}",
        "Not a directory",
    )


@pytest.mark.parametrize(
    "module, words",
    [
        ("bzzz.workers.no_such_worker", ["No module named 'bzzz.workers.no_such_worker'"]),
        ("no_such_package.worker", ["No module named 'no_such_package'"]),
        ("bzzz.workers", ["a package without __main__"]),
    ],
)
def test_a_worker_module_that_cannot_be_run_is_refused_before_anything_starts(
    tmp_path: Path,
    module: str,
    words: list[str],
) -> None:
    config = write_config(tmp_path / "bzzz.toml", tmp_path / "data", {"alpha": PROBE, "broken": {"module": module}})
    refused_at_start(config, "worker 'broken'", repr(module), *words)
    assert not (tmp_path / "data" / "logs" / "alpha.log").exists(), "no worker was started"


def test_the_valid_config_starts_the_agent(tmp_path: Path) -> None:
    process = agent_run(write_config(tmp_path / "bzzz.toml", tmp_path / "data"))
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "run" / "control.sock").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the agent did not come up"
            time.sleep(0.05)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert process.returncode == 0


def venv_copy(where: Path) -> Path:
    """A Python of this venv at a path the test may take away: a venv made of symlinks to this one."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("needs the tests to run in a venv")
    (where / "bin").mkdir(parents=True)
    (where / "pyvenv.cfg").write_text((Path(sys.prefix) / "pyvenv.cfg").read_text())
    (where / "lib").symlink_to(Path(sys.prefix) / "lib")
    python = where / "bin" / "python"
    python.symlink_to(sys.executable)
    return python


def test_a_python_that_can_no_longer_be_executed_ends_the_agent_with_the_reason(tmp_path: Path) -> None:
    python = venv_copy(tmp_path / "venv")
    config = write_config(
        tmp_path / "bzzz.toml", tmp_path / "data", max_restarts=2, max_seconds=60, backoff_initial_s=0.05
    )
    process = agent_run(config, str(python))
    try:
        client = ControlClient(tmp_path / "data" / "run", timeout_s=5)
        deadline = time.monotonic() + 30
        while (pid := _running(client, "alpha")) is None:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        # An upgrade gone wrong: the agent's Python is replaced by a file that cannot be executed.
        python.unlink()
        python.write_text("not a program\n")
        assert not os.access(python, os.X_OK)
        os.kill(pid, signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 3, err
    assert "Traceback" not in out + err
    assert "could not start: cannot execute" in err and str(python) in err and "Permission denied" in err
    assert "killed by SIGKILL" in err  # the control: the first exit was the kill, then the starts failed


def _running(client: ControlClient, name: str) -> int | None:
    try:
        worker = next(w for w in client.call("status")["workers"] if w["worker"] == name)
    except ControlError:  # not answering yet
        return None
    return int(worker["pid"]) if worker["state"] == "running" else None
