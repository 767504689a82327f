"""A model's answer as file edits: read from its text, checked, and applied to the workspace.

The model is asked to answer with whole files, each between two marker lines:

    <<<FILE path/inside/the/repo.py>>>
    the file's complete new content
    <<<END>>>

and `<<<DELETE path>>>` for a file to remove. Whole files rather than diffs because small
models get the line numbers and context of a unified diff wrong far more often than they get
a file's content wrong, and a wrong diff fails as a whole. Anything outside the markers
(explanations, code fences around the blocks) is ignored.

The answer is untrusted (a model's text, steered by the issue's text), and the agent applies
it on the host, possibly as root, into a tree the task's earlier commands wrote. So a path must
be relative and name a file strictly inside the workspace; no component may be `..`, be named
`.git` (in any case, nor the forms other filesystems fold to it), or be a symlink: a link
planted by a command (`g -> .git`, `out -> /etc`) is never followed, whatever it points at.
Content is at most `MAX_FILE_BYTES`. An answer with any edit that breaks these is refused whole
(`EditError`), and nothing is written. Files are opened with `O_NOFOLLOW`, so even a link that
appeared after the check is not written through (no task process runs while edits are applied).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 50

_BLOCK = re.compile(r"^<<<FILE[ \t]+(?P<path>[^\n>]+?)[ \t]*>>>[ \t]*\n(?P<body>.*?)^<<<END>>>[ \t]*$", re.M | re.S)
_DELETE = re.compile(r"^<<<DELETE[ \t]+(?P<path>[^\n>]+?)[ \t]*>>>[ \t]*$", re.M)


class EditError(ValueError):
    """The answer's edits cannot be applied; the message says why, for the model's next round."""


@dataclass(frozen=True)
class Edit:
    path: str
    content: str | None  # None: delete the file


def parse_edits(answer: str) -> list[Edit]:
    """Every edit in the answer, in order; EditError if there is none or one is malformed."""
    edits = [Edit(m["path"].strip(), m["body"]) for m in _BLOCK.finditer(answer)]
    edits += [Edit(m["path"].strip(), None) for m in _DELETE.finditer(answer)]
    if not edits:
        if "<<<FILE" in answer:
            raise EditError("a <<<FILE path>>> block is not closed by a line holding only <<<END>>>")
        raise EditError(
            "the answer holds no edits: give each changed file whole, between <<<FILE path>>> and <<<END>>> lines"
        )
    if len(edits) > MAX_FILES:
        raise EditError(f"the answer edits {len(edits)} files, more than {MAX_FILES}")
    return edits


def is_git_name(part: str) -> bool:
    """`.git`, and the names that NTFS and HFS+ clients fold to it (`.git.`, `.git `, `git~1`,
    `.GIT`): a commit holding one can plant a repository on a colleague's checkout."""
    folded = "".join(c for c in part.lower() if c not in _IGNORED_BY_HFS).rstrip(". ")
    return folded in (".git", "git~1")


# HFS+ drops these when it compares names, so ".g\u200cit" is ".git" there (git's protectHFS).
_IGNORED_BY_HFS = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)


def check_path(workspace: Path, path: str) -> Path:
    """The file `path` names inside `workspace`; EditError for anything that could leave it or
    reach `.git`. Nothing along the way may be a symlink, whatever it points at."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or "\\" in path or "\0" in path or not pure.parts or ".." in pure.parts:
        raise EditError(f"{path!r} is not a relative path to a file inside the repository")
    if any(is_git_name(part) for part in pure.parts):
        raise EditError(f"{path!r} is inside .git, which edits may not touch")
    root = workspace.absolute()
    current = root
    for part in pure.parts:
        current = current / part
        try:
            mode = current.lstat().st_mode
        except FileNotFoundError:
            break  # the rest is new: nothing there to follow
        if stat.S_ISLNK(mode):
            raise EditError(
                f"{path!r} goes through the symbolic link {current.relative_to(root)}, which edits do not follow"
            )
    return root / pure


def apply_edits(workspace: Path, edits: list[Edit]) -> list[str]:
    """Check every edit, then apply them all; the paths changed."""
    targets = []
    for edit in edits:
        target = check_path(workspace, edit.path)
        if edit.content is not None and len(edit.content.encode()) > MAX_FILE_BYTES:
            raise EditError(f"{edit.path!r} would be larger than {MAX_FILE_BYTES} bytes")
        if edit.content is None and not target.is_file():
            raise EditError(f"{edit.path!r} cannot be deleted: there is no such file")
        if target.is_dir():
            raise EditError(f"{edit.path!r} is a directory")
        if target.exists() and not target.is_file():
            raise EditError(f"{edit.path!r} is not a regular file")
        targets.append(target)
    for edit, target in zip(edits, targets, strict=True):
        if edit.content is None:
            target.unlink()
        else:
            _make_dirs(workspace.absolute(), target.parent)
            _write(target, edit.content.encode())
    return [edit.path for edit in edits]


def _make_dirs(root: Path, directory: Path) -> None:
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            if not stat.S_ISDIR(current.lstat().st_mode):
                raise EditError(f"{current.relative_to(root)} is not a directory") from None


def _write(target: Path, content: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(content)
