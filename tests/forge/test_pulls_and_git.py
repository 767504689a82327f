"""Git over smart HTTP with tokens, and pull requests from pushed branches, through PyGithub."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import github
import pytest
from github import GithubException

from tests.forge.harness import Forge


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    home = Path(os.environ.get("TMPDIR", "/tmp"))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Agent One",
        "GIT_AUTHOR_EMAIL": "agent-1@bzzz.invalid",
        "GIT_COMMITTER_NAME": "Agent One",
        "GIT_COMMITTER_EMAIL": "agent-1@bzzz.invalid",
    }
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done


def with_token(forge: Forge, token: str, repo: str) -> str:
    return forge.url.replace("http://", f"http://x-access-token:{token}@") + f"/{repo}.git"


def push_branch(
    forge: Forge, tmp_path: Path, branch: str, token: str = "agent-1-token", repo: str = "alice/widgets"
) -> Path:
    work = tmp_path / branch.replace("/", "-")
    git("clone", "--quiet", f"{forge.url}/{repo}.git", str(work))
    git("checkout", "--quiet", "-b", branch, cwd=work)
    (work / "CHANGES.md").write_text(f"{branch}\n")
    git("add", "CHANGES.md", cwd=work)
    git("commit", "--quiet", "-m", f"Work on {branch}", cwd=work)
    git("push", "--quiet", with_token(forge, token, repo), branch, cwd=work)
    return work


def test_anyone_clones_a_public_repository_and_sees_its_content(forge: Forge, tmp_path: Path) -> None:
    git("clone", "--quiet", f"{forge.url}/alice/widgets.git", str(tmp_path / "w"))
    assert (tmp_path / "w" / "src" / "widgets.py").read_text() == "print('hi')\n"


def test_a_private_repository_needs_a_token_with_access(forge: Forge, tmp_path: Path) -> None:
    assert git("clone", f"{forge.url}/alice/secret.git", str(tmp_path / "a"), check=False).returncode != 0
    denied = git("clone", with_token(forge, "agent-1-token", "alice/secret"), str(tmp_path / "b"), check=False)
    assert denied.returncode != 0
    git("clone", "--quiet", with_token(forge, "alice-token", "alice/secret"), str(tmp_path / "c"))


def test_a_push_needs_push_access(forge: Forge, tmp_path: Path) -> None:
    work = push_branch(forge, tmp_path, "agent-1/pushed")
    assert (
        forge.github().get_repo("alice/widgets").get_branch("agent-1/pushed").commit.commit.message
        == "Work on agent-1/pushed"
    )
    git("checkout", "--quiet", "-b", "stranger/nope", cwd=work)
    refused = git("push", with_token(forge, "stranger-token", "alice/widgets"), "stranger/nope", cwd=work, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    anonymous = git("push", f"{forge.url}/alice/widgets.git", "stranger/nope", cwd=work, check=False)
    assert anonymous.returncode != 0


def test_a_pull_request_from_a_pushed_branch(forge: Forge, tmp_path: Path) -> None:
    push_branch(forge, tmp_path, "agent-1/verbose")
    repo = forge.github().get_repo("alice/widgets")
    pull = repo.create_pull(
        title="Add --verbose", body="Closes #1\n\nLog: hypercore://abc/12", head="agent-1/verbose", base="main"
    )
    assert (pull.state, pull.head.ref, pull.base.ref, pull.user.login) == ("open", "agent-1/verbose", "main", "agent-1")
    assert pull.head.sha == repo.get_branch("agent-1/verbose").commit.sha
    assert pull.number in {p.number for p in repo.get_pulls(state="open")}
    assert [p.number for p in repo.get_pulls(head="alice:agent-1/verbose")] == [pull.number]
    assert repo.get_issue(pull.number).pull_request is not None  # a pull request is an issue too
    pull.edit(title="Add a --verbose flag", body="Closes #1")
    again = repo.get_pull(pull.number)
    assert (again.title, again.body, again.merged) == ("Add a --verbose flag", "Closes #1", False)
    with pytest.raises(GithubException) as duplicate:
        repo.create_pull(title="again", body="", head="agent-1/verbose", base="main")
    assert duplicate.value.status == 422 and "already exists" in str(duplicate.value.data)
    pull.edit(state="closed")
    assert repo.get_pull(pull.number).state == "closed"


def test_a_pull_request_needs_commits_and_existing_branches(forge: Forge) -> None:
    repo = forge.github().get_repo("alice/widgets")
    repo.create_git_ref("refs/heads/agent-1/empty", repo.get_branch("main").commit.sha)
    for head, base, text in [
        ("agent-1/empty", "main", "No commits between"),
        ("nope", "main", "head"),
        ("agent-1/empty", "nope", "base"),
    ]:
        with pytest.raises(GithubException) as refused:
            repo.create_pull(title="t", body="", head=head, base=base)
        assert refused.value.status == 422 and text in str(refused.value.data)


def test_a_fork_then_a_pull_request_from_it(forge: Forge, tmp_path: Path) -> None:
    stranger = forge.github("stranger-token")
    fork = stranger.get_repo("alice/widgets").create_fork()
    assert (fork.full_name, fork.fork) == ("stranger/widgets", True)
    assert [f.full_name for f in forge.github().get_repo("alice/widgets").get_forks()] == ["stranger/widgets"]
    push_branch(forge, tmp_path, "typo", token="stranger-token", repo="stranger/widgets")
    pull = stranger.get_repo("alice/widgets").create_pull(title="Fix typo", body="", head="stranger:typo", base="main")
    assert (pull.head.label, pull.head.repo.full_name) == ("stranger:typo", "stranger/widgets")


def test_state_survives_a_restart(forge_factory) -> None:
    first = forge_factory(name="persistent")
    number = first.github().get_repo("alice/widgets").create_issue("Remember me").number
    first.process.terminate()
    first.process.wait(10)
    second = forge_factory(name="persistent")  # same data dir, same seed: nothing doubled
    repo = second.github().get_repo("alice/widgets")
    assert repo.get_issue(number).title == "Remember me"
    assert len([i for i in repo.get_issues(state="all") if i.title == "Add --verbose"]) == 1


def test_repository_settings_need_admin(forge: Forge) -> None:
    with pytest.raises(GithubException) as denied:
        forge.github("agent-1-token").get_repo("alice/widgets").edit(description="mine")
    assert denied.value.status == 403
    alice = forge.github("alice-token").get_repo("alice/widgets")
    alice.edit(description="Widgets, by agents")
    assert forge.github().get_repo("alice/widgets").description == "Widgets, by agents"


def test_a_repository_is_deleted_with_its_git_data(forge_factory) -> None:
    f = forge_factory(name="deleting")
    f.github("alice-token").get_repo("alice/secret").delete()
    with pytest.raises(github.UnknownObjectException):
        f.github("alice-token").get_repo("alice/secret")
    assert not (f.data / "forge" / "repos" / "alice" / "secret.git").exists()
