"""A real n8n for the tests: the install `make n8n` caches, started with one workflow active.

- `binary()`: the `n8n` that tools/build/n8n.sh installed into the tools cache, or None;
- `run(n8n, folder, workflow, webhook=...)`: the workflow imported and activated in a fresh
  user folder, `n8n start` on a free port, waited for until `/healthz` answers and then until
  the workflow's webhook is registered; stopped at the end;
- `N8n.executions(...)` / `N8n.static_data(...)`: what n8n recorded, read from its SQLite.

n8n is slow to come up (about 15 s to `/healthz`, 30-40 s to active webhooks on an idle
machine), so the deadlines here are generous.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.agents import free_port, wait_until

VERSION = "1.123.50"
CACHE = Path(os.environ.get("TOOLS_CACHE") or Path.home() / ".cache" / "bzzz") / f"n8n-{VERSION}"
NOT_BUILT = "no real n8n installed (make test-n8n)"
START_S = 300  # to /healthz and then to an active webhook, on a loaded 2-core machine
CLI_S = 300  # one `n8n import:workflow` / `update:workflow` (each boots n8n's whole core)


def binary() -> Path | None:
    path = CACHE / "node_modules" / ".bin" / "n8n"
    return path if os.access(path, os.X_OK) else None


@dataclass
class N8n:
    url: str
    process: subprocess.Popen[bytes]
    folder: Path
    log: Path

    def webhook(self, path: str) -> str:
        return f"{self.url}/webhook/{path}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.folder / ".n8n" / "database.sqlite", timeout=30)) as db:
            return db.execute(sql, args).fetchall()

    def executions(self, workflow_id: str) -> dict[str, int]:
        """How many of the workflow's executions n8n recorded, by status ("success", ...)."""
        rows = self._query(
            "SELECT status, count(*) FROM execution_entity WHERE workflowId = ? GROUP BY status", workflow_id
        )
        return {status: count for status, count in rows}

    def static_data(self, workflow_id: str) -> dict[str, Any]:
        """The workflow's static data as n8n saved it (after an execution ends)."""
        rows = self._query("SELECT staticData FROM workflow_entity WHERE id = ?", workflow_id)
        return dict(json.loads(rows[0][0])) if rows and rows[0][0] else {}


def _environment(folder: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "N8N_USER_FOLDER": str(folder),  # its SQLite, key and settings: nothing in ~/.n8n
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        # The Code node's task runner talks to n8n over a broker port (5679 by default):
        # a free one, so n8ns of parallel tests do not collide.
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),
        # Nothing phones home, nothing waits on the network.
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_HIRING_BANNER_ENABLED": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "true",
        "DB_TYPE": "sqlite",
        "DB_SQLITE_POOL_SIZE": "2",
        "N8N_RUNNERS_ENABLED": "true",
        "N8N_GIT_NODE_DISABLE_BARE_REPOS": "true",
        "EXECUTIONS_DATA_SAVE_ON_SUCCESS": "all",
        **extra,
    }


def _cli(n8n: Path, env: dict[str, str], *args: str) -> str:
    ran = subprocess.run([str(n8n), *args], env=env, capture_output=True, text=True, timeout=CLI_S)
    if ran.returncode != 0:
        raise AssertionError(f"n8n {' '.join(args)} failed ({ran.returncode}):\n{(ran.stdout + ran.stderr)[-2000:]}")
    return ran.stdout


@contextmanager
def run(
    n8n: Path,
    folder: Path,
    workflow: dict[str, Any],
    *,
    webhook: str,
    env: dict[str, str] | None = None,
) -> Iterator[N8n]:
    """`workflow` (n8n export JSON with an "id") imported, activated and served by `n8n start`
    in `folder`; yields once `/healthz` answers and its webhook `webhook` (not a GET one) is
    registered."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = _environment(folder, port, env or {})
    source = folder / "workflow.json"
    source.write_text(json.dumps(workflow))
    _cli(n8n, environment, "import:workflow", f"--input={source}")
    _cli(n8n, environment, "update:workflow", f"--id={workflow['id']}", "--active=true")
    log = folder / "n8n.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(n8n), "start"], env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = N8n(f"http://127.0.0.1:{port}", process, folder, log)
    try:

        def alive() -> None:
            if process.poll() is not None:
                raise AssertionError(f"n8n start exited ({process.returncode}):\n{server.output()[-2000:]}")

        def healthy() -> bool:
            alive()
            try:
                return httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            except httpx.HTTPError:
                return False

        def registered() -> bool:
            # Asked with a method it was not made for, a webhook n8n has registered says so
            # ("not registered for GET requests"), one it has not yet says it does not know the
            # path; neither starts the workflow. (An OPTIONS preflight answers 204 either way.)
            alive()
            try:
                answer = httpx.get(server.webhook(webhook), timeout=5)
            except httpx.HTTPError:
                return False
            return answer.status_code == 404 and "not registered for GET" in answer.text

        wait_until(healthy, START_S, "n8n's /healthz")
        wait_until(registered, START_S, f"n8n to register the webhook {webhook!r}")
        yield server
    finally:
        # The task runner is a child of n8n: the whole process group goes.
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        _signal_group(process.pid, signal.SIGKILL)  # a runner left behind by a clean exit


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # nobody left in it
