"""A model's answer as file edits: read from its text, checked, and applied to the workspace.

The model is asked to answer with whole files, each between two marker lines:

    <<<FILE path/inside/the/repo.py>>>
    the file's complete new content
    <<<END>>>

and `<<<DELETE path>>>` for a file to remove. Whole files rather than diffs because small
models get the line numbers and context of a unified diff wrong far more often than they get
a file's content wrong, and a wrong diff fails as a whole. Anything outside the markers
(explanations, code fences around the blocks) is ignored.

A path must be relative, inside the workspace once resolved (no `..`, no symlink leading
out), not inside `.git`, and at most `MAX_FILE_BYTES` of content; an answer with any edit
that breaks these is refused whole (`EditError`), and nothing is written.
"""

from __future__ import annotations

import re
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
        raise EditError("the answer holds no edits: give each changed file whole, between "
                        "<<<FILE path>>> and <<<END>>> lines")
    if len(edits) > MAX_FILES:
        raise EditError(f"the answer edits {len(edits)} files, more than {MAX_FILES}")
    return edits


def check_path(workspace: Path, path: str) -> Path:
    """The file `path` names inside `workspace`; EditError for anything that leaves it."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or "\\" in path or "\0" in path:
        raise EditError(f"{path!r} is not a relative path inside the repository")
    if pure.parts[0] == ".git":
        raise EditError(f"{path!r} is inside .git, which edits may not touch")
    root = workspace.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise EditError(f"{path!r} leads outside the repository")
    return target


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
        targets.append(target)
    for edit, target in zip(edits, targets):
        if edit.content is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(edit.content)
    return [edit.path for edit in edits]
