"""The workspace against the forge: the pristine clone, the task's copy, its result on the branch.

Real git, real files, a real forge; the hostile side (what a task writes into its `.git`) is in
tests/security/test_git_escape.py.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bzzz.executor.workspace import (
    Workspace,
    WorkspaceError,
    branch_name,
    git_url,
    remove_stale,
)
from tests.forge.harness import Forge, start_forge, stop_forge

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOKEN = "agent-1-secret-token"
SEED = """
users:
  - {login: alice, site_admin: true, tokens: [alice-token]}
  - {login: agent-1, tokens: [agent-1-secret-token]}
  - {login: mallory, tokens: [mallory-secret-token]}
repos:
  - owner: alice
    name: tasks
    collaborators: {agent-1: push}
    files: {README.md: "# Tasks\\n", .gitignore: "*.log\\n", tool.sh: "echo tool\\n", docs/old.md: "old\\n"}
"""
AUTHOR = ("agent-1", "agent-1@users.noreply.bzzz")


@pytest.fixture(scope="module")
def forge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Forge]:
    running = start_forge(tmp_path_factory.mktemp("forge"), seed=SEED)
    yield running
    stop_forge(running)


def clone(forge: Forge, tmp_path: Path, branch: str, token: str = TOKEN, **kwargs: int) -> Workspace:
    return Workspace.clone(
        tmp_path / "work", git_url(forge.url, "alice/tasks"), token=token, branch=branch, author=AUTHOR, **kwargs
    )


def plain_git(*args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=120
    ).stdout


def every_file(*roots: Path) -> Iterator[Path]:
    for root in roots:
        for directory, _, files in os.walk(root):
            for name in files:
                yield Path(directory) / name


def test_a_change_made_in_the_exported_copy_becomes_a_commit_by_the_agent_on_the_forges_branch(
    forge: Forge, tmp_path: Path
) -> None:
    workspace = clone(forge, tmp_path, "bzzz/1-agent-1")
    assert workspace.base == "main" and workspace.branch == "bzzz/1-agent-1"
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    assert (dest / "README.md").read_text() == "# Tasks\n"
    assert plain_git("-C", str(dest), "branch", "--show-current").strip() == "bzzz/1-agent-1"
    assert plain_git("-C", str(dest), "remote").strip() == "", "the task's copy has no remote"

    (dest / "README.md").write_text("# Tasks\n\nMore.\n")
    (dest / "docs" / "old.md").unlink()
    (dest / "docs" / "new.md").write_text("new\n")
    (dest / "tool.sh").chmod(0o755)
    (dest / "debug.log").write_text("ignored, as git add --all would\n")
    changed = workspace.collect(dest)
    assert sorted(changed) == ["README.md", "docs/new.md", "docs/old.md", "tool.sh"]
    sha = workspace.commit("Edit the README (#1)")
    assert sha is not None
    workspace.push()

    checkout = tmp_path / "checkout"
    plain_git("clone", "--quiet", "--branch", "bzzz/1-agent-1", workspace.url, str(checkout))
    assert plain_git("-C", str(checkout), "rev-parse", "HEAD").strip() == sha
    assert (checkout / "README.md").read_text() == "# Tasks\n\nMore.\n"
    assert not (checkout / "docs" / "old.md").exists() and not (checkout / "debug.log").exists()
    assert os.access(checkout / "tool.sh", os.X_OK)
    assert (
        plain_git("-C", str(checkout), "log", "-1", "--format=%an <%ae>|%cn|%s").strip()
        == "agent-1 <agent-1@users.noreply.bzzz>|agent-1|Edit the README (#1)"
    )
    assert (
        plain_git("-C", str(checkout), "rev-parse", "HEAD^").strip()
        == plain_git("-C", str(checkout), "rev-parse", "origin/main").strip()
    )
    workspace.remove()
    assert not workspace.path.exists()


def test_the_token_is_in_no_file_of_the_pristine_clone_or_the_tasks_copy(forge: Forge, tmp_path: Path) -> None:
    workspace = clone(forge, tmp_path, "bzzz/2-agent-1")
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    (dest / "new.txt").write_text("x\n")
    workspace.collect(dest)
    assert workspace.commit("x") is not None
    workspace.push()
    forms = [TOKEN.encode(), base64.b64encode(f"x-access-token:{TOKEN}".encode()), base64.b64encode(TOKEN.encode())]
    files = list(every_file(workspace.path, dest))
    assert len(files) > 10, "the walk saw the repositories"
    leaks = [str(path) for path in files for form in forms if form in path.read_bytes()]
    assert leaks == []
    # The copy does not even say where the agent's clone is.
    assert not any(str(workspace.path).encode() in path.read_bytes() for path in every_file(dest))


def test_a_refused_push_says_why_without_the_token(forge: Forge, tmp_path: Path) -> None:
    workspace = clone(forge, tmp_path, "bzzz/3-mallory", token="mallory-secret-token")
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    (dest / "new.txt").write_text("x\n")
    workspace.collect(dest)
    assert workspace.commit("x") is not None
    with pytest.raises(WorkspaceError) as failed:
        workspace.push()
    message = str(failed.value)
    assert message.startswith("git push failed")
    assert "mallory-secret-token" not in message
    assert base64.b64encode(b"x-access-token:mallory-secret-token").decode() not in message


def test_a_second_export_starts_over_from_the_branch_head(forge: Forge, tmp_path: Path) -> None:
    workspace = clone(forge, tmp_path, "bzzz/4-agent-1")
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    head = plain_git("-C", str(dest), "rev-parse", "HEAD").strip()
    (dest / "README.md").write_text("round 1\n")
    (dest / "stray" / "deep").mkdir(parents=True)
    (dest / "stray" / "deep" / "file").write_text("x\n")
    (dest / "stray" / "deep").chmod(0o500)  # a task may leave what it cannot delete itself
    plain_git("-C", str(dest), "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-qam", "round 1")
    (dest / "sneaky").symlink_to("/etc")
    workspace.export(dest)
    assert sorted(os.listdir(dest)) == [".git", ".gitignore", "README.md", "docs", "tool.sh"]
    assert (dest / "README.md").read_text() == "# Tasks\n"
    assert plain_git("-C", str(dest), "rev-parse", "HEAD").strip() == head
    assert plain_git("-C", str(dest), "status", "--porcelain") == ""
    assert Path("/etc/passwd").exists(), "emptying followed no link"


def test_a_result_that_changes_nothing_commits_nothing(forge: Forge, tmp_path: Path) -> None:
    workspace = clone(forge, tmp_path, "bzzz/5-agent-1")
    dest = tmp_path / "dest"
    dest.mkdir()
    workspace.export(dest)
    (dest / "build.log").write_text("only an ignored file\n")
    assert workspace.collect(dest) == []
    assert workspace.commit("nothing") is None


def test_a_repository_larger_than_its_cap_is_not_cloned_and_leaves_nothing(forge: Forge, tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="larger than 1024 bytes"):
        clone(forge, tmp_path, "bzzz/6-agent-1", max_repo_bytes=1024)
    assert os.listdir(tmp_path / "work") == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/alice/tasks.git",
        "ssh://git@github.com/alice/tasks.git",
        "git://github.com/alice/tasks.git",
        "file:///srv/repo.git",
        "ext::sh -c touch% /tmp/pwned",
        "/srv/repo.git",
        "https://x-access-token:secret@github.com/alice/tasks.git",
    ],
)
def test_a_clone_url_other_than_https_or_http_to_this_machine_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(WorkspaceError) as refused:
        Workspace.clone(tmp_path / "work", url, token=TOKEN, branch="bzzz/7-agent-1", author=AUTHOR)
    assert "secret" not in str(refused.value)
    assert not (tmp_path / "work").exists() or os.listdir(tmp_path / "work") == []


def test_a_clone_that_cannot_reach_the_forge_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="git clone failed"):
        Workspace.clone(
            tmp_path / "work", "http://127.0.0.1:9/alice/tasks.git", token=TOKEN, branch="bzzz/8-agent-1", author=AUTHOR
        )
    assert os.listdir(tmp_path / "work") == []


def test_workspaces_left_by_a_killed_executor_are_removed_at_start_and_nothing_else(
    forge: Forge, tmp_path: Path
) -> None:
    left = clone(forge, tmp_path, "bzzz/9-agent-1")
    other = tmp_path / "work" / "not-a-workspace"
    other.mkdir()
    assert remove_stale(tmp_path / "work") == [left.path]
    assert not left.path.exists() and other.exists()
    assert remove_stale(tmp_path / "missing") == []


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("https://api.github.com", "https://github.com/alice/tasks.git"),
        ("https://api.github.com/", "https://github.com/alice/tasks.git"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com/alice/tasks.git"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com/alice/tasks.git"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/alice/tasks.git"),
    ],
)
def test_the_git_url_comes_from_the_configured_api_base(base: str, expected: str) -> None:
    assert git_url(base, "alice/tasks") == expected


@pytest.mark.parametrize("repo", ["alice", "alice/../x", "../tasks", "alice/tasks/extra", "alice/ta sks", "a/."])
def test_a_repository_name_that_is_not_owner_slash_name_gives_no_url(repo: str) -> None:
    with pytest.raises(WorkspaceError):
        git_url("https://api.github.com", repo)


def test_branch_names_keep_only_what_git_accepts() -> None:
    assert branch_name(12, "agent-1") == "bzzz/12-agent-1"
    assert branch_name(3, "..we ird/name..") == "bzzz/3-we-ird-name"
    assert branch_name(3, "...") == "bzzz/3-agent"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_task_in_the_real_sandbox_commits_with_its_own_git_and_the_agent_takes_only_its_files(
    forge: Forge, tmp_path: Path
) -> None:
    from bzzz.executor.sandbox import Sandbox

    work = tmp_path / "work"
    work.mkdir()
    for directory in (tmp_path, work):  # the sandbox's uid must reach its area
        directory.chmod(0o755)
    marker = tmp_path / "RAN-fsmonitor"
    workspace = clone(forge, tmp_path, "bzzz/10-agent-1")
    with Sandbox.open(work) as sandbox:
        workspace.export(sandbox.files)
        script = (
            f"echo hi > GREETING.md && git add -A && git commit -qm mine && "
            f"git config core.fsmonitor 'touch {marker}' && git log --format=%an -1"
        )
        ran = sandbox.run(["sh", "-c", script])
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "agent-1", "the task's git ran, on its own copy"
        assert workspace.collect(sandbox.files) == ["GREETING.md"]
        sha = workspace.commit("Add a greeting")
        assert sha is not None
        workspace.push()
        assert not marker.exists()
        # Positive control: plain host git on the task's copy (owned by the sandbox's uid, hence
        # safe.directory) runs what the task configured.
        subprocess.run(
            ["git", "-c", "safe.directory=*", "status"],
            cwd=sandbox.files,
            capture_output=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        )
        assert marker.exists()
        workspace.export(sandbox.files)
        again = sandbox.run(["sh", "-c", "git status --porcelain; git config core.fsmonitor; cat GREETING.md"])
        assert again.stdout == "hi\n", "starting over: the branch's head, a fresh .git"
    checkout = tmp_path / "checkout"
    plain_git("clone", "--quiet", "--branch", "bzzz/10-agent-1", workspace.url, str(checkout))
    assert (checkout / "GREETING.md").read_text() == "hi\n"
    assert plain_git("-C", str(checkout), "log", "--format=%s", "-2").splitlines() == [
        "Add a greeting",
        "Initial commit",
    ]
