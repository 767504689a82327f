"""Finding the `bzzz-task` blocks of an issue body, as GitHub's Markdown (CommonMark) renders them.

The rules (fences, indentation, blocks inside other blocks, look-alikes) are in the package
documentation (`bzzz.tasks`). `scan` returns the blocks found at the top level and a problem
for each fence that looks like a `bzzz-task` fence but would not be rendered as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Block", "scan"]

_INFO_WORD = "bzzz-task"
_LINE_END = re.compile(r"\r\n|\r|\n")
# CommonMark: up to three spaces, then three or more backticks or tildes, then the info string.
_OPENING = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
# Anything a reader would take for a bzzz-task fence: after spaces, quote markers and list markers.
_LOOKALIKE = re.compile(
    r"[ \t>]*(?:(?:[-*+]|\d{1,9}[.)])[ \t][ \t>]*)*(`{3,}|~{3,})[ \t]*bzzz-task(?:[ \t]|$)", re.IGNORECASE
)


@dataclass
class Block:
    """One `bzzz-task` block: where it opens, what it holds, and whether it was closed."""

    line: int  # 1-based line of the opening fence
    content: str
    closed: bool


@dataclass
class _Fence:
    line: int
    char: str
    length: int
    indent: int
    task: bool
    lines: list[str] = field(default_factory=list)
    lookalikes: list[tuple[int, bool]] = field(default_factory=list)  # line, would close this fence


def _closes(line: str, fence: _Fence) -> bool:
    stripped = line.lstrip(" ")
    if len(line) - len(stripped) > 3:
        return False
    run = len(stripped) - len(stripped.lstrip(fence.char))
    return run >= fence.length and not stripped[run:].strip(" \t")


def scan(body: str) -> tuple[list[Block], list[str]]:
    """The body's top-level `bzzz-task` blocks, and problems with fences that look like one."""
    blocks: list[Block] = []
    problems: list[str] = []
    fence: _Fence | None = None
    for number, line in enumerate(_LINE_END.split(body), start=1):
        if fence is None:
            match = _OPENING.fullmatch(line)
            info = match.group(3).strip() if match else ""
            if match and not (match.group(2)[0] == "`" and "`" in info):
                words = info.split()
                fence = _Fence(
                    line=number,
                    char=match.group(2)[0],
                    length=len(match.group(2)),
                    indent=len(match.group(1)),
                    task=bool(words) and words[0].casefold() == _INFO_WORD,
                )
            elif _LOOKALIKE.match(line):
                problems.append(
                    f"line {number}: a bzzz-task fence must start a line (at most 3 spaces before it), "
                    "not be indented further, quoted or in a list item"
                )
        elif _closes(line, fence):
            if fence.task:
                blocks.append(Block(fence.line, "\n".join(fence.lines), closed=True))
            problems += _swallowed(fence, closed=True)
            fence = None
        elif fence.task:
            cut = len(line) - len(line.lstrip(" "))
            fence.lines.append(line[min(cut, fence.indent) :])
        elif lookalike := _LOOKALIKE.match(line):
            run = lookalike.group(1)
            fence.lookalikes.append((number, run[0] == fence.char and len(run) >= fence.length))
    if fence is not None:
        if fence.task:
            blocks.append(Block(fence.line, "\n".join(fence.lines), closed=False))
        problems += _swallowed(fence, closed=False)
    return blocks, problems


def _swallowed(fence: _Fence, closed: bool) -> list[str]:
    """Problems for bzzz-task fences inside another code block that is broken around them.

    Inside a closed block, behind a fence that could not end it (other character, or shorter),
    a bzzz-task block is an example. Otherwise the author most likely forgot to close a code block
    before the task block, which GitHub then shows as code: say so rather than ignore it.
    """
    problems = []
    for number, would_close in fence.lookalikes:
        if not closed:
            why = "which is never closed"
        elif would_close:
            why = "and the bzzz-task block's closing fence ends that block (close it first)"
        else:
            continue
        problems.append(f"line {number}: a bzzz-task fence is inside the code block opened on line {fence.line}, {why}")
    return problems
