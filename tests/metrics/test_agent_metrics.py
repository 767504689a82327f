"""One `/metrics` per agent (`[metrics] listen`): the supervisor serves every worker's series
and its own, a killed worker's counters survive it and its gauges do not, a previous run's
files are gone at start, and a bad address is one line. Real `bzzz agent run` processes,
scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from bzzz._core import MerkleLog
from bzzz.capabilities.machine import bzzz_version
from bzzz.config import load as load_config
from bzzz.paths import DataDir, merkle_dir, metrics_addr, metrics_multiproc_dir
from tests.agents import mesh_worker, toml_config
from tests.forge.harness import start_forge, stop_forge
from tests.metrics.harness import LOG, METRICS, PROBE, Scrape, address, github_worker, scrape, scraped

SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    labels: [{name: bzzz-task}]
    issues:
      - {title: "Add --verbose", labels: [bzzz-task]}
"""


def log_length(data_dir: Path) -> int:
    with MerkleLog.open(merkle_dir(DataDir(data_dir).log)) as opened:
        return opened.length


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_one_endpoint_serves_the_series_of_every_worker_and_of_the_supervisor(start_agent, tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        token_file = tmp_path / "token"
        token_file.write_text("agent-1-token\n")
        workers = {
            "log": LOG,
            "mesh": mesh_worker(),
            "hmmm": {"module": "bzzz.workers.hmmm"},
            "github": github_worker(forge.url, token_file),
            "executor": {"module": "bzzz.testing.probe", "args": ["--executor", "0.2"]},
        }
        agent = start_agent(workers, node_id="walnut", extra=METRICS)
        for name in workers:
            agent.wait_running(name, timeout=60)
        # The issue was claimed, "executed" by the probe and reported: the github worker's series moved.
        seen = scraped(
            agent,
            lambda s: s.get("bzzz_claims_total", outcome="won") == 1 and s.get("bzzz_tasks", state="done") == 1,
            90,
            "the claim won and the task done",
        )
    finally:
        stop_forge(forge)

    assert seen.get("bzzz_agent_info", node_id="walnut", version=bzzz_version()) == 1
    for name in workers:  # the supervisor's own series, per worker
        assert seen.get("bzzz_worker_up", worker=name) == 1, name
        assert seen.get("bzzz_worker_restarts_total", worker=name) == 0, name
    # Each worker's own series, from its own process, in the one endpoint:
    assert seen.get("bzzz_log_length") is not None and seen.get("bzzz_log_appended_entries_total") is not None  # log
    assert seen.get("bzzz_mesh_connected_peers") == 0 and seen.get("bzzz_mesh_rejected_total", reason="signature") == 0
    assert seen.get("bzzz_bus_queue_depth", worker="hmmm") is not None  # hmmm's outbox
    assert seen.get("bzzz_bus_queue_depth", worker="github") is not None  # github's outbox
    assert seen.get("bzzz_claims_total", outcome="lost") == 0 and seen.get("bzzz_tasks", state="claimed") == 0
    # Every gauge names its multiprocess mode: none is split by process (prometheus_client's
    # default, "all", would label each worker process's value with its pid).
    assert [s for s in seen.samples if "pid" in s.labels] == []

    shown = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "ctl", "status", "--run-dir", str(agent.run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert f"metrics http://{address(agent)}/metrics" in shown.stdout, shown.stdout
    assert agent.call("status")["agent"]["metrics"] == address(agent)
    # Each worker's environment points at the one folder the endpoint reads.
    folder = str(metrics_multiproc_dir(agent.run_dir))
    assert environ(agent.worker("github")["pid"])["PROMETHEUS_MULTIPROC_DIR"] == folder


def test_a_worker_killed_is_restarted_once_its_counters_stay_and_its_gauges_go(start_agent) -> None:
    agent = start_agent({"log": LOG, "probe": PROBE}, extra=METRICS)
    old = agent.wait_running("log", timeout=30)["pid"]
    before = scraped(
        agent,
        lambda s: s.get("bzzz_log_length") == log_length(agent.data_dir) and s.get("bzzz_worker_up", worker="log") == 1,
        30,
        "the log worker's series",
    )
    appended = before.get("bzzz_log_appended_entries_total")
    assert appended is not None and appended >= 1  # its own start, at least
    assert before.get("bzzz_worker_restarts_total", worker="log") == 0
    dead_gauges = metrics_multiproc_dir(agent.run_dir) / f"gauge_livesum_{old}.db"
    assert dead_gauges.exists()  # positive control: the process to be killed holds a live gauge

    os.kill(old, signal.SIGKILL)
    agent.wait_running("log", other_than=old, timeout=30)

    # Its successor appends `worker_started`: one more than the dead one counted, not a count from 0.
    after = scraped(
        agent,
        lambda s: (
            s.get("bzzz_log_appended_entries_total") == appended + 1 and s.get("bzzz_worker_up", worker="log") == 1
        ),
        30,
        "the dead worker's count and the new worker's entry",
    )
    assert after.get("bzzz_worker_restarts_total", worker="log") == 1  # exactly one restart
    assert after.get("bzzz_worker_restarts_total", worker="probe") == 0
    assert not dead_gauges.exists()
    # The dead process's bzzz_log_length would add to its successor's (livesum): it is the log's length alone.
    assert after.get("bzzz_log_length") == log_length(agent.data_dir)


def test_a_stopped_worker_is_down_and_its_gauges_are_gone_but_not_its_counters(start_agent) -> None:
    agent = start_agent({"log": LOG, "probe": PROBE}, extra=METRICS)
    agent.wait_running("log", timeout=30)
    scraped(agent, lambda s: s.get("bzzz_log_length") is not None, 30, "the log's length")
    agent.call("stop", worker="log")
    agent.wait_for(lambda: agent.worker("log")["state"] == "stopped", 30, "the log worker stopped")
    stopped = scrape(agent)
    assert stopped.get("bzzz_worker_up", worker="log") == 0
    assert stopped.get("bzzz_log_length") is None
    assert stopped.get("bzzz_log_appended_entries_total") is not None and stopped.get(
        "bzzz_log_appended_entries_total"
    ) == log_length(agent.data_dir)  # its start and its stop, both its own
    assert stopped.get("bzzz_worker_up", worker="probe") == 1


def test_files_of_a_previous_run_are_removed_before_the_workers_start(start_agent, tmp_path: Path) -> None:
    run_dir = tmp_path / "agent" / "run"
    stale = metrics_multiproc_dir(run_dir)
    stale.mkdir(parents=True)
    # A "previous run": a worker process that counted 1000 appends and held a length of 5000.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from bzzz.log.metrics import APPENDED, LOG_LENGTH; APPENDED.inc(1000); LOG_LENGTH.set(5000)",
        ],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(stale)},
        check=True,
        timeout=60,
    )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(stale))  # type: ignore[no-untyped-call]
    # Positive control: read as the endpoint reads, those files would count.
    assert registry.get_sample_value("bzzz_log_appended_entries_total") == 1000
    assert registry.get_sample_value("bzzz_log_length") == 5000
    metrics_addr(run_dir).write_text("127.0.0.1:1\n")  # and a stale address

    agent = start_agent({"log": LOG, "probe": PROBE}, extra=METRICS)
    assert agent.run_dir == run_dir
    agent.wait_running("log", timeout=30)
    assert address(agent) != "127.0.0.1:1"
    now = scraped(
        agent,
        lambda s: (
            s.get("bzzz_log_length") == log_length(agent.data_dir) and s.get("bzzz_log_appended_entries_total") == 1
        ),
        30,
        "this run's figures only",
    )
    assert now.get("bzzz_log_length") == 1  # the new log: its worker_started entry


def test_metrics_are_off_unless_configured(start_agent) -> None:
    agent = start_agent({"probe": PROBE})
    probe = agent.wait_running("probe", timeout=30)
    assert agent.call("status")["agent"]["metrics"] is None
    assert not metrics_addr(agent.run_dir).exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in environ(probe["pid"])


def refused(config: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in process.stdout + process.stderr
    lines = process.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bzzz: error: "), process.stderr
    return process.returncode, lines[0]


def test_a_bad_listen_address_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    for bad, why in [
        ("localhost", "expected HOST:PORT"),
        ("127.0.0.1:99999", "the port must be a number from 0 to 65535"),
        ("::1:9464", "an IPv6 host goes in brackets"),
    ]:
        config.write_text(toml_config(tmp_path / "data", {"probe": PROBE}) + f'\n[metrics]\nlisten = "{bad}"\n')
        status, line = refused(config)
        assert status == 2 and "metrics.listen" in line and why in line and repr(bad) in line, line
    config.write_text(toml_config(tmp_path / "data", {"probe": PROBE}))
    status, line = refused(config, {"BZZZ_METRICS__LISTEN": "nowhere"})
    assert status == 2 and "env BZZZ_METRICS__LISTEN" in line, line
    assert not (tmp_path / "data" / "run" / "supervisor.pid").exists()  # refused before anything started


def test_an_address_that_cannot_be_bound_is_one_line_and_the_run_dir_is_let_go(start_agent, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "bzzz.toml"
        config.write_text(
            toml_config(tmp_path / "agent", {"probe": PROBE}) + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
        )
        status, line = refused(config)
    assert status == 1 and f"metrics.listen 127.0.0.1:{port}: cannot serve there" in line, line
    # Nothing was left holding the agent's dirs: the same agent starts once the port is free.
    agent = start_agent({"probe": PROBE}, extra=f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    agent.wait_running("probe", timeout=30)
    assert address(agent) == f"127.0.0.1:{port}"


def test_config_show_lists_the_metrics_setting_and_where_it_came_from(tmp_path: Path) -> None:
    config = tmp_path / "bzzz.toml"
    config.write_text(toml_config(tmp_path / "data", {"probe": PROBE}) + METRICS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    shown = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    row = next(line for line in shown.stdout.splitlines() if line.startswith("metrics.listen "))
    assert '"127.0.0.1:0"' in row and f"file {config}" in row
    default = subprocess.run(
        [sys.executable, "-m", "bzzz.cli.main", "config", "show"],
        capture_output=True,
        text=True,
        env={**env, "BZZZ_DATA_DIR": str(tmp_path / "d")},
        timeout=60,
    )
    row = next(line for line in default.stdout.splitlines() if line.startswith("metrics.listen "))
    assert "null" in row and "default" in row


def test_the_scrape_helper_sees_a_missing_series() -> None:
    # Control for the assertions above: absent is None, not 0.
    parsed = Scrape("# TYPE bzzz_log_length gauge\nbzzz_log_length 3.0\n")
    assert parsed.get("bzzz_log_length") == 3 and parsed.get("bzzz_worker_up", worker="log") is None


def test_the_images_default_config_serves_metrics_on_9464_of_every_address() -> None:
    image_config = Path(__file__).resolve().parents[2] / "docker" / "bzzz.toml"
    assert load_config(image_config).metrics.address == ("0.0.0.0", 9464)
