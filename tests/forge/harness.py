"""A running forge for the tests: `bzzz forge serve` as its own process, seeded, recording.

Every API exchange the forge answers is recorded (`--record`); `check_contract` checks every
recorded response against GitHub's OpenAPI description: whatever PyGithub or a test made the
forge say has to be what GitHub would have said. The fixtures of tests/forge/ (conftest.py)
do so at the end of each test module.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from github import Auth, Github

from tests.forge.contract import Contract

SEED = """
users:
  - {login: alice, name: Alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-token]}
  - {login: agent-2, tokens: [agent-2-token]}
  - {login: stranger, tokens: [stranger-token]}
repos:
  - owner: alice
    name: widgets
    collaborators: {agent-1: push, agent-2: push}
    files: {README.md: "# Widgets\\n", src/widgets.py: "print('hi')\\n"}
    labels: [{name: bzzz-task, color: 0e8a16, description: for the agents}, {name: bug, color: d73a4a}]
    issues:
      - {title: "Add --verbose", body: "Print what it does.", labels: [bzzz-task]}
      - {title: "Fix the typo in README", labels: [bzzz-task, bug], assignees: [agent-1]}
      - {title: "Write docs", user: stranger}
  - owner: alice
    name: secret
    private: true
"""


@dataclass
class Forge:
    url: str
    data: Path
    record: Path
    process: subprocess.Popen[str]

    def github(self, token: str | None = "agent-1-token", **kwargs: object) -> Github:
        auth = Auth.Token(token) if token else None
        # No pacing: PyGithub waits 0.25 s between requests by default, for GitHub's sake.
        kwargs = {"seconds_between_requests": None, "seconds_between_writes": None, **kwargs}
        return Github(base_url=self.url, auth=auth, **kwargs)  # type: ignore[arg-type]

    def call(self, method: str, path: str, token: str | None = "agent-1-token", **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def exchanges(self) -> list[dict[str, object]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]


def start_forge(data: Path, *args: str, seed: str = SEED) -> Forge:
    data.mkdir(parents=True, exist_ok=True)
    (data / "seed.yaml").write_text(seed)
    record = data / "exchanges.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BZZZ_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bzzz.cli.main",
            "forge",
            "serve",
            "--data",
            str(data / "forge"),
            "--port",
            "0",
            "--seed",
            str(data / "seed.yaml"),
            "--record",
            str(record),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("forge listening on "):
            url = line.split()[3]
            return Forge(url, data, record, process)
    process.kill()
    raise AssertionError(f"the forge did not start: {''.join(seen)}")


def stop_forge(forge: Forge) -> None:
    forge.process.terminate()
    try:
        forge.process.wait(10)
    except subprocess.TimeoutExpired:
        forge.process.kill()
        forge.process.wait()


_contract: Contract | None = None


def contract() -> Contract:
    global _contract
    if _contract is None:
        _contract = Contract.load()
    return _contract


# Answers GitHub gives to any request, which its description does not repeat for every
# operation: a body it cannot parse (400) or whose JSON fails the operation's schema (422
# "Invalid request"), bad or missing credentials, the rate limits (403, or 429 for the
# secondary one), a body too large, a server fault.
CROSS_CUTTING = {400, 401, 403, 413, 422, 429, 500, 502, 503}
# Served as GitHub does, but outside the slice of its description we have: the `url` of
# every git ref points here, and clients follow it.
UNDESCRIBED = re.compile(r"GET /repos/[^/]+/[^/]+/git/refs/.+\Z")


def check_contract(forge: Forge) -> None:
    """Every response the forge gave matches GitHub's description of that operation."""
    failures = []
    for exchange in forge.exchanges():
        method, path, status, body = (exchange[k] for k in ("method", "path", "status", "body"))
        if UNDESCRIBED.match(f"{method} {path}"):
            continue
        try:
            contract().validate(str(method), str(path), int(status), body)  # type: ignore[call-overload]
        except AssertionError as error:
            if status in CROSS_CUTTING and "status not documented" in str(error):
                if (
                    isinstance(body, dict)
                    and isinstance(body.get("message"), str)
                    and isinstance(body.get("documentation_url"), str)
                ):
                    continue
            failures.append(str(error))
    assert not failures, f"{len(failures)} responses differ from GitHub's description:\n" + "\n".join(
        dict.fromkeys(failures)
    )


# -- a git client ---------------------------------------------------------------------------------


def git(
    env: dict[str, str], *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def commit_on(env: dict[str, str], repo: Path, parent: str, message: str) -> str:
    """A new commit in a bare repository: `parent`'s tree, `parent` as its parent; its sha."""
    tree = git(env, "--git-dir", str(repo), "rev-parse", f"{parent}^{{tree}}").stdout.strip()
    return git(env, "--git-dir", str(repo), "commit-tree", tree, "-p", parent, "-m", message).stdout.strip()
