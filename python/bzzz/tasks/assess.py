"""Whether THIS agent may take an issue: its `LabelFilter`, then the task's needs against its
`Capabilities` (the rules are in the package documentation, `bzzz.tasks`, under Matching)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bzzz.capabilities import Capabilities
from bzzz.capabilities.names import name_set, normalize, quoted
from bzzz.tasks.types import TaskSpec

__all__ = ["LabelFilter", "Verdict", "assess"]


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "none"


@dataclass(frozen=True)
class LabelFilter:
    """Which issues this agent considers: all of `include`, none of `exclude` (case ignored)."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        include = name_set("include", self.include)
        exclude = name_set("exclude", self.exclude)
        if both := include & exclude:
            raise ValueError(f"labels both included and excluded, no issue could pass: {_listing(both)}")
        object.__setattr__(self, "include", include)
        object.__setattr__(self, "exclude", exclude)


@dataclass(frozen=True)
class Verdict:
    """Whether this agent may take the issue; if not, every reason why."""

    ok: bool
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ok == bool(self.reasons):
            raise ValueError("a verdict is ok exactly when it has no reasons")


def assess(spec: TaskSpec, labels: Sequence[str], caps: Capabilities, filters: LabelFilter) -> Verdict:
    """Whether an agent with `caps` and `filters` may take an issue with `labels` needing `spec`."""
    reasons = [f"cannot read what the task needs: {problem}" for problem in spec.problems]
    have = {normalize(label) for label in labels}
    for label in sorted(filters.include - have):
        reasons.append(f"not labelled {quoted(label)}, which this agent requires")
    for label in sorted(filters.exclude & have):
        reasons.append(f"labelled {quoted(label)}, which this agent does not take")
    for tool in sorted(spec.needs_tools - caps.tools):
        reasons.append(f"needs tool {quoted(tool)}, this agent has: {_listing(caps.tools)}")
    for language in sorted(spec.needs_languages - caps.languages):
        reasons.append(f"needs language {quoted(language)}, this agent has: {_listing(caps.languages)}")
    for name in sorted(spec.needs_tools_or_languages - caps.tools - caps.languages):
        reasons.append(
            f"needs {quoted(name)} (a tool or a language), this agent has tools: {_listing(caps.tools)};"
            f" languages: {_listing(caps.languages)}"
        )
    for model in sorted(spec.needs_models):
        if not caps.has_model(model):
            reasons.append(f"needs model {quoted(model)} (any tag), this agent has: {_listing(caps.models)}")
    return Verdict(ok=not reasons, reasons=tuple(reasons))
