"""The approval attack (issue 16, item 3) against a real agent (supervisor, log, github and
executor workers) and the forge: a stranger files a harmless task, a maintainer labels it
trusted, the stranger edits the command. The label approved a text, not the issue: the edited
command never runs, the maintainer is told once, and only the approved text ever runs.

The positive control: the same hostile body filed by the trusted author runs, and leaves its
file in the pull request, so the refusal above is the approval rule at work, not a command that
could not have run in this set-up.

The github worker checks before it claims, and the executor again on what it runs. The
`*_before_the_claim` tests replace the executor by the probe (which does whatever it is handed),
so that the github worker's check alone is shown to stop the attack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from github import Auth, Github

from bzzz.github.approval import decide, task_digest
from tests.issues import agent_workers, comments, wait_for_comment
from tests.security.harness import agent_as

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

TITLE = "Add a greeting"
HARMLESS = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo hello from the sandbox > GREETING.md'"]
```
"""
HOSTILE = """Please add a greeting file.

```bzzz-task
run: ["sh -c 'echo mallory was here > PWNED.md'"]
```
"""
NOTICE = "bzzz:approval-needed"


def trusting_agent(forge_url: str, token_file: Path) -> dict[str, dict[str, Any]]:
    """The review's cluster: alice trusted, `bzzz-approved` trusted, in both workers."""
    workers = agent_workers(forge_url, token_file, trust_labels=["bzzz-approved"])
    workers["github"]["settings"] |= {"trust_authors": ["alice"], "trust_labels": ["bzzz-approved"]}
    return workers


def open_issue(forge: Any, body: str, token: str) -> int:
    reply = forge.call(
        "POST", "/repos/alice/tasks/issues", token=token, json={"title": TITLE, "body": body, "labels": ["bzzz-task"]}
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["number"])


def edit(forge: Any, number: int, body: str, token: str = "mallory-token") -> None:
    reply = forge.call("PATCH", f"/repos/alice/tasks/issues/{number}", token=token, json={"body": body})
    assert reply.status_code == 200, reply.text


def say(forge: Any, number: int, text: str, token: str = "alice-token") -> None:
    reply = forge.call("POST", f"/repos/alice/tasks/issues/{number}/comments", token=token, json={"body": text})
    assert reply.status_code == 201, reply.text


def notices(forge: Any, number: int) -> list[str]:
    return [body for body in comments(forge, number) if NOTICE in body]


def pulls(forge: Any) -> list[dict[str, Any]]:
    return list(forge.call("GET", "/repos/alice/tasks/pulls?state=all", token="alice-token").json())


def branches(forge: Any) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-remote", "--heads", f"{forge.url}/alice/tasks.git"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"},
    )
    return [line.split("refs/heads/", 1)[1] for line in listed.stdout.splitlines()]


def branch_files(forge: Any, tmp_path: Path, number: int) -> Path:
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
        timeout=60,
        env={"PATH": os.environ["PATH"], "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(tmp_path)},
    )
    return checkout


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def nothing_ran(forge: Any, number: int) -> None:
    assert pulls(forge) == []
    assert f"bzzz/{number}-agent-1" not in branches(forge)
    issue = forge.call("GET", f"/repos/alice/tasks/issues/{number}", token="alice-token").json()
    assert issue["assignees"] == []  # not even claimed
    assert not [b for b in comments(forge, number) if "Could not finish" in b or "Opened " in b]


def test_an_edit_after_approval_never_runs_and_only_the_approved_text_does(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    start_agent(trusting_agent(forge.url, token_file))
    number = open_issue(forge, HARMLESS, token="mallory-token")
    forge.call(
        "POST",
        f"/repos/alice/tasks/issues/{number}/labels",
        token="alice-token",
        json={"labels": ["bzzz-task", "bzzz-approved"]},
    )
    edit(forge, number, HOSTILE)
    original, hostile = task_digest(TITLE, HARMLESS), task_digest(TITLE, HOSTILE)

    # The agent looks at the edited issue, refuses it, and says so.
    wait_for(lambda: any(hostile in b for b in notices(forge, number)), 60, "the approval notice")
    # Several more polls, and a change that makes the agent look again (a comment): said once.
    time.sleep(3)
    say(forge, number, "Looking into it.")
    time.sleep(3)
    said = notices(forge, number)
    assert len([b for b in said if f"{NOTICE} {hostile}" in b]) == 1
    assert all(f"{NOTICE} {original}" in b for b in said if f"{NOTICE} {hostile}" not in b)  # the polls between
    assert len(said) <= 2
    assert "@alice" in said[-1] and f"bzzz approve {hostile}" in said[-1]
    nothing_ran(forge, number)

    # alice pins what she saw, the harmless text: the issue still says something else.
    say(forge, number, f"Fine by me.\n\nbzzz approve {original}")
    time.sleep(4)
    nothing_ran(forge, number)
    assert len([b for b in notices(forge, number) if f"{NOTICE} {hostile}" in b]) == 1
    agent_view = Github(base_url=forge.url, auth=Auth.Token("agent-1-secret-token"))
    refused = decide(
        agent_view.get_repo("alice/tasks").get_issue(number),
        trusted_authors=frozenset({"alice"}),
        trusted_labels=frozenset({"bzzz-approved"}),
    )
    assert not refused.approved and "edited after it was approved" in refused.why

    # mallory puts the approved text back: that, and only that, runs.
    edit(forge, number, HARMLESS)
    bodies = wait_for_comment(forge, number, "Opened ", timeout=120)
    [pull] = pulls(forge)
    assert pull["html_url"] in "\n".join(bodies)
    checkout = branch_files(forge, tmp_path, number)
    assert (checkout / "GREETING.md").read_text() == "hello from the sandbox\n"
    assert not (checkout / "PWNED.md").exists()


def test_positive_control_the_hostile_text_from_the_trusted_author_does_run(
    start_agent,
    forge: Any,
    token_file: Path,
    tmp_path: Path,
) -> None:
    start_agent(trusting_agent(forge.url, token_file))
    number = open_issue(forge, HOSTILE, token="alice-token")
    wait_for_comment(forge, number, "Opened ", timeout=120)
    checkout = branch_files(forge, tmp_path, number)
    assert (checkout / "PWNED.md").read_text() == "mallory was here\n"
    assert notices(forge, number) == []


def test_a_label_the_stranger_sets_herself_approves_nothing(
    start_agent,
    forge: Any,
    token_file: Path,
) -> None:
    start_agent(trusting_agent(forge.url, token_file))
    reply = forge.call(
        "POST",
        "/repos/alice/tasks/issues",
        token="mallory-token",
        json={"title": TITLE, "body": HOSTILE, "labels": ["bzzz-task", "bzzz-approved"]},
    )
    number = int(reply.json()["number"])
    assert reply.json()["labels"] == []  # dropped, as GitHub drops them
    assert (
        forge.call(
            "POST",
            f"/repos/alice/tasks/issues/{number}/labels",
            token="mallory-token",
            json={"labels": ["bzzz-approved"]},
        ).status_code
        == 403
    )
    say(forge, number, f"bzzz approve {task_digest(TITLE, HOSTILE)}", token="mallory-token")
    # A maintainer adds only the agents' label (triage), as before issue 16.
    forge.call(
        "POST", f"/repos/alice/tasks/issues/{number}/labels", token="alice-token", json={"labels": ["bzzz-task"]}
    )
    wait_for(lambda: bool(notices(forge, number)), 60, "the refusal")
    time.sleep(2)
    [notice] = notices(forge, number)
    assert "@mallory is not a trusted author here" in notice
    nothing_ran(forge, number)


# --- the github worker's check alone (the executor replaced by a probe that runs anything) ---------


def probe_agent(forge_url: str, token_file: Path) -> dict[str, dict[str, Any]]:
    workers = trusting_agent(forge_url, token_file)
    workers["executor"] = {"module": "bzzz.testing.probe", "args": ["--executor", "0.2"]}
    return workers


def assigned(forge: Any, number: int) -> list[str]:
    issue = forge.call("GET", f"/repos/alice/tasks/issues/{number}", token="alice-token").json()
    return [a["login"] for a in issue["assignees"]]


def test_an_edit_after_approval_is_never_claimed_before_the_claim(
    start_agent,
    forge: Any,
    token_file: Path,
) -> None:
    start_agent(probe_agent(forge.url, token_file))
    number = open_issue(forge, HARMLESS, token="mallory-token")
    forge.call(
        "POST",
        f"/repos/alice/tasks/issues/{number}/labels",
        token="alice-token",
        json={"labels": ["bzzz-task", "bzzz-approved"]},
    )
    edit(forge, number, HOSTILE)
    original, hostile = task_digest(TITLE, HARMLESS), task_digest(TITLE, HOSTILE)
    wait_for(lambda: any(hostile in b for b in notices(forge, number)), 60, "the approval notice")
    time.sleep(3)
    say(forge, number, "Looking into it.")
    time.sleep(3)
    assert len([b for b in notices(forge, number) if f"{NOTICE} {hostile}" in b]) == 1
    assert assigned(forge, number) == []

    say(forge, number, f"bzzz approve {original}")
    time.sleep(4)
    assert assigned(forge, number) == [] and not [b for b in comments(forge, number) if "probe executor" in b]
    assert len([b for b in notices(forge, number) if f"{NOTICE} {hostile}" in b]) == 1

    edit(forge, number, HARMLESS)
    wait_for_comment(forge, number, f"the probe executor did {TITLE!r}", timeout=60)
    assert assigned(forge, number) == ["agent-1"]


def test_positive_control_the_trusted_authors_hostile_text_is_claimed_before_the_claim(
    start_agent,
    forge: Any,
    token_file: Path,
) -> None:
    start_agent(probe_agent(forge.url, token_file))
    number = open_issue(forge, HOSTILE, token="alice-token")
    wait_for_comment(forge, number, f"the probe executor did {TITLE!r}", timeout=60)
    assert notices(forge, number) == []


AGENT_UID = 4243


@pytest.fixture
def unprivileged_probe_agent(forge: Any) -> Iterator[Path]:
    """The same agent as an ordinary user (uid 4243): approval must not depend on being root."""
    with agent_as(AGENT_UID, lambda token_file: probe_agent(forge.url, token_file)) as (agent, _):
        yield agent.data_dir


def test_an_unprivileged_agent_refuses_the_edit_after_approval_too(
    unprivileged_probe_agent: Path,
    forge: Any,
) -> None:
    number = open_issue(forge, HARMLESS, token="mallory-token")
    forge.call(
        "POST",
        f"/repos/alice/tasks/issues/{number}/labels",
        token="alice-token",
        json={"labels": ["bzzz-task", "bzzz-approved"]},
    )
    original, hostile = task_digest(TITLE, HARMLESS), task_digest(TITLE, HOSTILE)
    say(forge, number, f"bzzz approve {original}")
    edit(forge, number, HOSTILE)
    wait_for(lambda: any(hostile in b for b in notices(forge, number)), 60, "the approval notice")
    time.sleep(3)
    assert assigned(forge, number) == [] and len(notices(forge, number)) <= 2
    assert len([b for b in notices(forge, number) if f"{NOTICE} {hostile}" in b]) == 1
    # Positive control: the approved text is handed over, by this same unprivileged agent.
    edit(forge, number, HARMLESS)
    wait_for_comment(forge, number, f"the probe executor did {TITLE!r}", timeout=60)
    assert assigned(forge, number) == ["agent-1"]
