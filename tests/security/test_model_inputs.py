"""What a model reads and writes: its prompt holds repository files only, never a host file
reached through a link; its edits land only on plain files inside the workspace, never in or
through `.git` or a link a command planted. Each test first shows the hostile link really
leads where it claims (a positive control)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bzzz.executor.edits import EditError, apply_edits, parse_edits
from bzzz.executor.model import ModelSettings, _prompt

HOST_SECRET = "host-only-content-7d1f"


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    path = tmp_path / "host" / "secret.txt"
    path.parent.mkdir()
    path.write_text(HOST_SECRET + "\n")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / "README.md").write_text("# Widgets\n")
    return root


def edit(path: str, content: str = "x\n") -> list:  # type: ignore[type-arg]
    return parse_edits(f"<<<FILE {path}>>>\n{content}<<<END>>>\n")


def test_the_prompt_never_follows_a_link_to_a_host_file(repo: Path, host_file: Path) -> None:
    (repo / "notes.md").symlink_to(host_file)
    (repo / "docs").symlink_to(host_file.parent, target_is_directory=True)
    assert HOST_SECRET in (repo / "notes.md").read_text()  # the link works: naive reading leaks
    assert HOST_SECRET in (repo / "docs" / "secret.txt").read_text()
    prompt = _prompt(
        repo, "Fix notes.md", "Update notes.md, docs/secret.txt and README.md", ModelSettings(endpoints=())
    )
    assert HOST_SECRET not in prompt
    assert "# Widgets" in prompt  # the repository's own file mentioned in the issue is there
    listing = prompt.split("Files in the repository:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert "README.md" in listing and "notes.md" not in listing and "docs/secret.txt" not in listing


def test_the_prompt_skips_files_over_the_context_budget_and_never_lists_git(repo: Path) -> None:
    (repo / "big.txt").write_text("y" * 10_000)
    prompt = _prompt(repo, "t", "see big.txt and README.md", ModelSettings(endpoints=(), max_context_bytes=5_000))
    assert "y" * 100 not in prompt and "# Widgets" in prompt
    assert ".git/config" not in prompt


@pytest.mark.parametrize("link, target", [("g", ".git"), ("out", "/etc"), ("up", "..")])
def test_an_edit_through_a_planted_link_is_refused_and_writes_nothing(repo: Path, link: str, target: str) -> None:
    (repo / link).symlink_to(target)
    assert (repo / link).resolve().exists()  # the link leads somewhere real
    with pytest.raises(EditError, match="symbolic link"):
        apply_edits(repo, edit(f"{link}/config"))
    assert (repo / ".git" / "config").read_text() == "[core]\n"


def test_an_edit_of_a_link_itself_is_refused(repo: Path, host_file: Path) -> None:
    (repo / "notes.md").symlink_to(host_file)
    with pytest.raises(EditError, match="symbolic link"):
        apply_edits(repo, edit("notes.md", "overwritten\n"))
    assert host_file.read_text() == HOST_SECRET + "\n"


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".GIT/config",
        "sub/.git/config",
        ".git./config",
        "git~1/config",
        ".g\u200cit/config",
        ".",
        "./",
        "a/..",
        "../x",
        "/etc/passwd",
        "a\\b",
    ],
)
def test_edits_into_git_or_outside_the_repository_are_refused_as_edit_errors(repo: Path, path: str) -> None:
    with pytest.raises(EditError):
        apply_edits(repo, [*edit("ok.txt"), *edit(path)])
    assert not (repo / "ok.txt").exists()  # refused whole
    assert (repo / ".git" / "config").read_text() == "[core]\n"


def test_a_plain_edit_still_lands(repo: Path) -> None:
    assert apply_edits(repo, edit("src/new.py", "print(1)\n")) == ["src/new.py"]
    assert (repo / "src" / "new.py").read_text() == "print(1)\n"
    assert not os.path.islink(repo / "src" / "new.py")
