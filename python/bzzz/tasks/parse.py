"""`parse_task`: what an issue needs, from its labels and its body's `bzzz-task` block (`bzzz.tasks`)."""

from __future__ import annotations

from collections.abc import Sequence

from bzzz.tasks.block import BlockValues, read_block
from bzzz.tasks.fences import scan
from bzzz.tasks.labels import read_labels
from bzzz.tasks.types import TaskSpec

__all__ = ["parse_task"]


def parse_task(title: str, body: str | None, labels: Sequence[str]) -> TaskSpec:
    """What the issue needs, from its labels and its body's `bzzz-task` block. Never raises."""
    del title  # not read; see the package documentation
    label_needs, problems = read_labels(labels)
    values = BlockValues()
    blocks, fence_problems = scan(body or "")
    problems += fence_problems
    if len(blocks) > 1:
        lines = ", ".join(str(block.line) for block in blocks)
        problems.append(f"the body has {len(blocks)} bzzz-task blocks (lines {lines}); there must be at most one")
    elif blocks:
        values, block_problems = read_block(blocks[0])
        problems += block_problems
    return TaskSpec(
        needs_models=values.models | label_needs["model"],
        needs_tools=values.tools | label_needs["tool"],
        needs_languages=values.languages | label_needs["language"],
        needs_tools_or_languages=frozenset(label_needs[""]),
        estimate_minutes=values.estimate_minutes,
        split=values.split,
        run=values.run,
        check=values.check,
        problems=tuple(problems),
    )
