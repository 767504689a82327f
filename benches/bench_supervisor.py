"""The supervisor: how fast a killed worker serves again, and what an idle agent weighs.

The agent runs the real log worker beside a probe: "serving again" for the log worker
means an append over the bus acknowledged again, after it reopened its log and state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import zmq

from benches.rates import CEILINGS
from bzzz.bus import RequestTimeout
from bzzz.log.service import LogClient
from bzzz.supervisor import ControlClient, ControlError
from tests.agents import toml_config


@pytest.fixture
def agent(tmp_path: Path):
    config = tmp_path / "bzzz.toml"
    config.write_text(
        toml_config(
            tmp_path,
            {
                "server": {"module": "bzzz.testing.probe", "args": ["--serve"], "heartbeat_timeout_s": 5.0},
                "log": {"module": "bzzz.workers.log", "heartbeat_timeout_s": 5.0},
            },
            {"max_restarts": 1000},
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = ControlClient(tmp_path / "run")
    deadline = time.monotonic() + 20
    while True:
        try:
            if all(w["state"] == "running" for w in client.call("status")["workers"]):
                break
        except ControlError:
            pass
        assert time.monotonic() < deadline, "agent did not start"
        time.sleep(0.05)
    yield process, client, tmp_path / "run"
    process.terminate()
    process.wait(20)


def ping(run_dir: Path, timeout_s: float) -> bool:
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"ipc://{run_dir / 'svc-server.sock'}")
    try:
        sock.send(b"ping")
        return bool(sock.poll(int(timeout_s * 1000))) and sock.recv() == b"pong ping"
    finally:
        sock.close()


def kill_and_wait(client: ControlClient, worker: str, serving: Callable[[], bool]) -> None:
    pid = next(w["pid"] for w in client.call("status")["workers"] if w["worker"] == worker)
    os.kill(pid, signal.SIGKILL)
    while not serving():
        pass


# Each round restarts the worker; wait between rounds so the worker is "stable" again
# and no backoff applies (backoff is for crash loops, not for one kill).
BETWEEN_ROUNDS = {"setup": lambda: time.sleep(5.2), "rounds": 3, "iterations": 1}


def test_kill_to_serving_again(benchmark, agent) -> None:
    process, client, run_dir = agent
    assert ping(run_dir, 5)
    benchmark.pedantic(kill_and_wait, args=(client, "server", lambda: ping(run_dir, 0.05)), **BETWEEN_ROUNDS)
    CEILINGS["kill -> worker restarted and serving again"] = (benchmark.stats.stats.max, 0.5, "s")


def test_kill_log_worker_to_appending_again(benchmark, agent) -> None:
    process, client, run_dir = agent
    with LogClient(run_dir, timeout_s=0.05, retries=0) as log:

        def appended() -> bool:
            try:
                log.append(b"bench")
            except RequestTimeout:
                return False
            return True

        assert log.append(b"first").count == 1
        benchmark.pedantic(kill_and_wait, args=(client, "log", appended), **BETWEEN_ROUNDS)
    CEILINGS["kill -> log worker restarted and appending"] = (benchmark.stats.stats.max, 0.5, "s")


def test_acknowledged_appends_over_the_bus(benchmark, agent, record_rate) -> None:
    process, client, run_dir = agent
    with LogClient(run_dir) as log:
        assert log.append(b"first").count == 1
        benchmark.pedantic(lambda: [log.append(b"x" * 200) for _ in range(200)], rounds=5, iterations=1)
    record_rate("log service: acknowledged append, one per request", "bus", benchmark, per_call=200)


def test_idle_agent_rss(benchmark, agent) -> None:
    process, client, run_dir = agent
    time.sleep(1)

    def rss_mb() -> float:
        root = psutil.Process(process.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20

    value = benchmark.pedantic(rss_mb, rounds=3, iterations=1)
    benchmark.extra_info["rss_mb"] = value
    CEILINGS["RSS of an idle agent (supervisor, log, probe)"] = (value, 250, "MB")
