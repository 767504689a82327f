"""Reading an issue's `needs:` labels (the table in the package documentation, `bzzz.tasks`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bzzz.capabilities.names import normalize, quoted

__all__ = ["KINDS", "read_labels"]

KINDS = ("language", "model", "tool")
"""The kinds of `needs:<kind>:<name>` labels."""

_LABEL = re.compile(r"\s*needs\s*:(.*)", re.IGNORECASE | re.DOTALL)


def read_labels(labels: Sequence[str]) -> tuple[dict[str, set[str]], list[str]]:
    """`needs:` labels by kind ('' for a bare `needs:<name>`), and problems. Other labels are not read."""
    needs: dict[str, set[str]] = {"": set(), **{kind: set() for kind in KINDS}}
    problems: list[str] = []
    for label in labels:
        match = _LABEL.fullmatch(label)
        if match is None:
            continue
        kind, sep, name = match.group(1).partition(":")
        kind, name = normalize(kind), normalize(name)
        if not sep:
            if not kind:
                problems.append(f"label {quoted(label)} names nothing (write needs:<name>)")
            elif kind in KINDS:
                problems.append(f"label {quoted(label)} names no {kind} (write needs:{kind}:<name>)")
            else:
                needs[""].add(kind)
        elif kind not in KINDS:
            problems.append(f"label {quoted(label)} has an unknown kind {quoted(kind)} (known: {', '.join(KINDS)})")
        elif not name:
            problems.append(f"label {quoted(label)} names no {kind} (write needs:{kind}:<name>)")
        else:
            needs[kind].add(name)
    return needs, problems
