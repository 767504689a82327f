"""The supervisor, end to end: a real agent process, real worker processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from bzzz.bus import Publisher, Subscriber
from bzzz.supervisor import ControlError

PROBE = "bzzz.testing.probe"


def probe(*args: str, **settings: object) -> dict[str, object]:
    return {"module": PROBE, "args": list(args), "heartbeat_timeout_s": 2.0, **settings}


def ctl(agent, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "ctl", *args, "--run-dir", str(agent.run_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/status").read_text().count("State:\tZ") == 1


# --- restarts ------------------------------------------------------------------------


def test_a_killed_permanent_worker_is_restarted_and_says_why(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    first = agent.wait_running("alpha")
    os.kill(first["pid"], signal.SIGKILL)
    second = agent.wait_running("alpha", other_than=first["pid"])
    assert second["restarts"] == 1
    assert second["last_exit"] == "killed by SIGKILL"


def test_a_transient_worker_stays_down_after_a_clean_exit_but_not_after_a_crash(start_agent) -> None:
    agent = start_agent(
        {
            "clean": probe("--exit-after", "0.2", restart="transient"),
            "crash": probe("--exit-after", "0.2", "--exit-code", "3", restart="transient"),
        },
        supervisor={"max_restarts": 100},
    )
    agent.wait_for(lambda: agent.worker("clean")["state"] == "exited", what="clean to exit")
    agent.wait_for(lambda: agent.worker("crash")["restarts"] >= 2, what="crash to be restarted")
    clean = agent.worker("clean")
    assert (clean["restarts"], clean["last_exit"]) == (0, "exited with status 0")
    assert agent.worker("crash")["last_exit"] == "exited with status 3"


def test_a_temporary_worker_is_never_restarted(start_agent) -> None:
    agent = start_agent({"once": probe("--exit-after", "0.1", "--exit-code", "1", restart="temporary")})
    agent.wait_for(lambda: agent.worker("once")["state"] == "exited", what="once to exit")
    time.sleep(0.5)
    assert agent.worker("once")["restarts"] == 0


def test_a_hung_worker_is_killed_and_restarted(start_agent) -> None:
    agent = start_agent({"stuck": probe("--hang-after", "0.3", heartbeat_timeout_s=1.0)})
    first = agent.wait_running("stuck")
    second = agent.wait_running("stuck", other_than=first["pid"], timeout=10)
    assert second["last_exit"] == "hung: no heartbeat for 1.0s, killed"
    assert gone(first["pid"])


def test_a_crash_loop_hits_the_intensity_limit_and_the_agent_exits_3(start_agent) -> None:
    agent = start_agent(
        {"flappy": probe("--exit-after", "0", "--exit-code", "1")},
        supervisor={"max_restarts": 3, "max_seconds": 30, "backoff_initial_s": 0.01, "backoff_max_s": 0.05},
        wait=False,
    )
    output, _ = agent.process.communicate(timeout=30)
    assert agent.process.returncode == 3
    assert "more than max_restarts=3: stopping the agent" in output
    assert not (agent.run_dir / "control.sock").exists()


def test_a_worker_that_keeps_failing_is_heard_in_the_agents_own_output_saying_why(start_agent) -> None:
    # The agent's output is all a container's logs show: the worker's last line says why it exits.
    agent = start_agent(
        {"confused": probe("--no-such-option")},
        supervisor={"max_restarts": 2, "max_seconds": 30, "backoff_initial_s": 0.01, "backoff_max_s": 0.05},
        wait=False,
    )
    output, _ = agent.process.communicate(timeout=60)
    assert agent.process.returncode == 3
    restarts = [line for line in output.splitlines() if "worker exited; restarting" in line]
    assert restarts and all("unrecognized arguments: --no-such-option" in line for line in restarts), output
    assert "stopping the agent; its last words: " in output


def test_quick_failures_back_off_exponentially(start_agent) -> None:
    agent = start_agent(
        {"flappy": probe("--exit-after", "0", "--exit-code", "1")},
        supervisor={"max_restarts": 100, "backoff_initial_s": 0.4, "backoff_max_s": 0.8},
    )
    agent.wait_for(lambda: agent.worker("flappy")["restarts"] >= 4, timeout=15, what="four restarts")
    started = time.monotonic()
    agent.wait_for(lambda: agent.worker("flappy")["restarts"] >= 6, timeout=15, what="two more restarts")
    # Capped at 0.8 s, jittered down to no less than half: two restarts take at least 0.8 s.
    assert time.monotonic() - started >= 0.7


# --- ctl -------------------------------------------------------------------------------


def test_ctl_status_prints_a_table_of_workers(start_agent) -> None:
    agent = start_agent({"alpha": probe(), "beta": probe()})
    agent.wait_running("alpha")
    agent.wait_running("beta")
    result = ctl(agent, "status")
    assert result.returncode == 0, result.stderr
    agent_line, bus_line, header, *rows = result.stdout.splitlines()
    assert agent_line.startswith("agent test-agent") and bus_line.split()[:2] == ["bus", "running"]
    assert header.split() == ["WORKER", "PID", "STATE", "UPTIME", "RESTARTS", "LAST", "EXIT"]
    assert [row.split()[0] for row in rows] == ["alpha", "beta"]
    assert all(row.split()[2] == "running" for row in rows)
    parsed = json.loads(ctl(agent, "status", "--json").stdout)
    assert {w["worker"] for w in parsed["workers"]} == {"alpha", "beta"}


def test_ctl_health_is_ok_only_while_every_worker_runs_and_names_the_one_that_does_not(start_agent) -> None:
    agent = start_agent({"alpha": probe(), "beta": probe()})
    agent.wait_running("alpha")
    agent.wait_running("beta")
    healthy = ctl(agent, "health")
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.strip() == "healthy: 2 workers running"
    assert ctl(agent, "stop", "beta").returncode == 0
    agent.wait_for(lambda: agent.worker("beta")["state"] == "stopped", what="beta stopped")
    unhealthy = ctl(agent, "health")
    assert unhealthy.returncode == 1
    assert "unhealthy: beta stopped" in unhealthy.stderr and "alpha" not in unhealthy.stderr


def test_ctl_health_without_an_agent_fails(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "ctl", "health", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and result.stderr.startswith("bzzz: error: ")
    assert "Traceback" not in result.stderr


def test_the_run_dir_and_its_sockets_are_private_to_the_agents_user(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    assert agent.run_dir.stat().st_mode & 0o777 == 0o700
    for name in ("control.sock", "heartbeat.sock", "bus.in", "bus.out"):
        assert (agent.run_dir / name).stat().st_mode & 0o777 == 0o600


def test_ctl_stop_start_and_restart_a_worker(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    first = agent.wait_running("alpha")
    assert ctl(agent, "stop", "alpha").returncode == 0
    agent.wait_for(lambda: agent.worker("alpha")["state"] == "stopped", what="alpha stopped")
    assert agent.worker("alpha")["last_exit"] == "exited with status 0"  # it heeded SIGTERM
    time.sleep(0.3)
    assert agent.worker("alpha")["state"] == "stopped", "a stopped worker stays stopped"
    assert ctl(agent, "start", "alpha").returncode == 0
    second = agent.wait_running("alpha", other_than=first["pid"])
    assert ctl(agent, "restart", "alpha").returncode == 0
    third = agent.wait_running("alpha", other_than=second["pid"])
    assert third["restarts"] == 0, "operator actions are not crashes"
    again = ctl(agent, "start", "alpha")
    assert again.returncode == 1 and "is running" in again.stderr


def test_a_worker_that_ignores_sigterm_is_killed_after_its_timeout(start_agent) -> None:
    agent = start_agent({"stubborn": probe("--ignore-sigterm", shutdown_timeout_s=0.5)})
    agent.wait_running("stubborn")
    started = time.monotonic()
    ctl(agent, "stop", "stubborn")
    agent.wait_for(lambda: agent.worker("stubborn")["state"] == "stopped", what="stubborn stopped")
    assert time.monotonic() - started >= 0.4
    assert agent.worker("stubborn")["last_exit"] == "killed by SIGKILL"


def test_ctl_logs_shows_a_workers_output(start_agent) -> None:
    agent = start_agent({"chatty": probe("--no-such-flag", restart="temporary")})
    agent.wait_for(lambda: agent.worker("chatty")["state"] == "exited", what="chatty to exit")
    result = ctl(agent, "logs", "chatty", "-n", "5")
    assert result.returncode == 0
    assert "unrecognized arguments: --no-such-flag" in result.stdout


def test_ctl_shutdown_stops_every_worker_and_the_agent(start_agent) -> None:
    agent = start_agent({"alpha": probe(), "beta": probe()})
    pids = [agent.wait_running(n)["pid"] for n in ("alpha", "beta")]
    assert ctl(agent, "shutdown").returncode == 0
    assert agent.process.wait(15) == 0
    assert all(gone(pid) for pid in pids)
    assert list(agent.run_dir.iterdir()) == []


def test_an_unknown_worker_gets_a_clear_error(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    with pytest.raises(ControlError, match="no worker named 'omega' \\(workers: alpha\\)") as caught:
        agent.call("restart", worker="omega")
    assert caught.value.errno == 3
    result = ctl(agent, "stop", "omega")
    assert result.returncode == 1 and "no worker named 'omega'" in result.stderr


def test_ctl_without_an_agent_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "ctl", "status", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "no agent is running" in result.stderr


@pytest.mark.parametrize(
    ("frames", "errno", "reason"),
    [
        ([b"not json"], 1, "not JSON"),
        ([b"[1, 2]"], 1, "must be a JSON object"),
        ([b'{"command": "dance"}'], 2, "unknown command 'dance'"),
        ([b'{"command": 7}'], 2, "unknown command 7"),
        ([b'{"command": "stop"}'], 1, "needs the property 'worker'"),
        ([b'{"command": "stop", "properties": []}'], 1, "'properties' must be an object"),
        ([b'{"command": "logs", "properties": {"worker": "alpha", "lines": -1}}'], 1, "'lines'"),
        ([b"{}", b"{}"], 1, "one frame"),
        ([b"\xff\xfe"], 1, "not JSON"),
    ],
)
def test_malformed_control_requests_get_an_error_and_the_agent_keeps_running(
    start_agent, frames, errno, reason
) -> None:
    agent = start_agent({"alpha": probe()})
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{agent.run_dir / 'control.sock'}")
    try:
        sock.send_multipart(frames)
        assert sock.poll(5000), "no reply"
        reply = json.loads(sock.recv())
    finally:
        sock.close()
    assert reply["status"] == "error" and reply["errno"] == errno and reason in reply["reason"]
    assert agent.call("status")["workers"][0]["worker"] == "alpha"


# --- the run dir and several agents --------------------------------------------------------


def test_stale_files_of_a_killed_supervisor_are_cleaned_and_its_workers_died_with_it(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    worker_pid = agent.wait_running("alpha")["pid"]
    agent.process.kill()
    agent.process.wait()
    deadline = time.monotonic() + 5
    while not gone(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gone(worker_pid), "a worker outlived its supervisor"
    left = {"supervisor.pid", "control.sock", "heartbeat.sock", "bus.in", "bus.out"}
    assert left <= {p.name for p in agent.run_dir.iterdir()}
    again = start_agent({"alpha": probe()})
    assert again.run_dir == agent.run_dir
    again.wait_running("alpha")
    assert int((agent.run_dir / "supervisor.pid").read_text()) == again.process.pid


def test_a_second_agent_on_the_same_run_dir_is_refused(start_agent, tmp_path: Path) -> None:
    shared = tmp_path / "shared-run"
    first = start_agent({"alpha": probe()}, name="first", run_dir=shared)
    second = start_agent({"alpha": probe()}, name="second", run_dir=shared, wait=False)
    output, _ = second.process.communicate(timeout=30)
    assert first.data_dir != second.data_dir  # so it is the run dir, not the data dir, that refuses
    assert second.process.returncode == 2
    assert f"already running in {first.run_dir}" in output
    assert first.call("status")["agent"]["pid"] == first.process.pid


def test_two_agents_started_together_on_one_run_dir_end_with_exactly_one_running(start_agent, tmp_path: Path) -> None:
    # The race itself, made deterministic, and its control: tests/supervisor/test_pidlock.py.
    shared = tmp_path / "shared-run"
    agents = [start_agent({"alpha": probe()}, name=name, run_dir=shared, wait=False) for name in ("one", "two")]
    deadline = time.monotonic() + 60
    while all(agent.process.poll() is None for agent in agents):
        assert time.monotonic() < deadline, "neither agent was refused"
        time.sleep(0.05)
    refused = next(agent for agent in agents if agent.process.poll() is not None)
    running = next(agent for agent in agents if agent is not refused)
    output, _ = refused.process.communicate(timeout=30)
    assert refused.process.returncode == 2 and f"already running in {shared}" in output, output
    running.wait_for(running.answering, 30, "the control socket")
    running.wait_running("alpha", timeout=30)
    assert running.process.poll() is None
    assert running.call("status")["agent"]["pid"] == running.process.pid
    assert int((shared / "supervisor.pid").read_text()) == running.process.pid


def test_two_agents_side_by_side_never_collide(start_agent) -> None:
    one = start_agent({"alpha": probe()}, name="one")
    two = start_agent({"alpha": probe()}, name="two")
    a1, a2 = one.wait_running("alpha"), two.wait_running("alpha")
    os.kill(a1["pid"], signal.SIGKILL)
    one.wait_running("alpha", other_than=a1["pid"])
    assert two.worker("alpha")["pid"] == a2["pid"] and two.worker("alpha")["restarts"] == 0
    assert one.call("status")["agent"]["run_dir"] != two.call("status")["agent"]["run_dir"]


def test_the_agent_runs_the_bus_its_workers_talk_over(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    with Subscriber(agent.run_dir, "news") as subscriber, Publisher(agent.run_dir, "alpha") as publisher:
        assert publisher.wait_for_subscriber("news", 10)
        assert publisher.publish("news", b"hello")
        received = subscriber.recv(5)
    assert received is not None and received[1].body == b"hello"
    bus = agent.call("status")["agent"]["bus"]
    assert bus["running"] and bus["events"] >= 1
    agent.call("shutdown")
    assert agent.process.wait(15) == 0
    assert list(agent.run_dir.iterdir()) == [], "a clean stop leaves a clean run dir"


def test_sigterm_stops_the_agent_cleanly(start_agent) -> None:
    agent = start_agent({"alpha": probe()})
    pid = agent.wait_running("alpha")["pid"]
    agent.process.send_signal(signal.SIGTERM)
    assert agent.process.wait(15) == 0
    assert gone(pid)
