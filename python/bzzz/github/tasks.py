"""What an issue needs, and whether this agent can take it.

An open issue says what it needs in two places, both optional: its **labels** and one
**`bzzz-task` block** in its body. The two are added together (a union). An issue that says
nothing needs nothing, and any agent may take it. An issue whose requirements cannot be read
is never taken: `parse_task` never raises, it returns a `TaskSpec` whose `problems` say what
is wrong, and `assess` turns each problem into a reason not to take the issue. Which issues an
agent looks at at all is its own configuration, a `LabelFilter`, not something the issue says.

```python
caps = Capabilities(models=["qwen2.5-coder:7b"], tools=["git", "pytest"], languages=["python"])
filters = LabelFilter(include=frozenset({"bzzz-task"}), exclude=frozenset({"blocked"}))

labels = [label.name for label in issue.labels]
verdict = assess(parse_task(issue.title, issue.body, labels), labels, caps, filters)
if not verdict.ok:
    log.info("not taking", issue=issue.number, reasons=verdict.reasons)
```

The title is not read (requirements live in labels and the body); it is part of the signature
so that callers hand over the whole issue.

### Labels

| label                   | the task needs                                                        |
|-------------------------|-----------------------------------------------------------------------|
| `needs:<name>`          | a tool *or* a language called `<name>` (either will do)               |
| `needs:tool:<name>`     | the tool `<name>`                                                     |
| `needs:language:<name>` | the language `<name>`                                                 |
| `needs:model:<name>`    | the model `<name>`, any tag; a tag may be given: `needs:model:phi3:mini` |

Labels are matched without regard to case, and spaces around the parts are ignored. Other
labels are not requirements. A `needs:` label that cannot be read is a problem (the issue is
not taken): an empty name (`needs:`, `needs:tool:`), a kind without a name (`needs:model`), or
an unknown kind (`needs:gpu:cuda`; the known kinds are `model`, `tool`, `language`).

### The task block

A fenced code block whose info string's first word is `bzzz-task`, holding one YAML mapping:

````markdown
Some prose about the task.

```bzzz-task
needs:
  tools: [git, pytest]
  models: [qwen2.5-coder]   # qwen2.5-coder, qwen2.5-coder:7b, qwen2.5-coder:32b, ...
  languages: [python]
estimate_minutes: 20
split: false
```

More prose.
````

| key                | type                       | default | meaning                                        |
|--------------------|----------------------------|---------|------------------------------------------------|
| `needs`            | mapping of the three below | `{}`    | what an agent must have                        |
| `needs.tools`      | list of names, or one name | `[]`    | every one of these tools                       |
| `needs.languages`  | list of names, or one name | `[]`    | every one of these languages                   |
| `needs.models`     | list of names, or one name | `[]`    | each of these models, any tag (see Matching)   |
| `estimate_minutes` | integer >= 1, or `null`    | `null`  | the author's estimate of the work              |
| `split`            | boolean                    | `false` | the agent may split the task into follow-up issues |
| `run`              | list of commands, or one   | `[]`    | commands to run in the repository, in order (the command executor) |
| `check`            | list of commands, or one   | `[]`    | the project's checks a model's change must pass (the model executor) |

A command is one line, split as a POSIX shell would split it (`shlex`), but never given to a
shell: `ruff format src` runs `ruff` with two arguments. At most 20 commands of at most 1,024
characters each. Which programs may run at all is the agent's allowlist, not the issue's.

Every key is optional, and a key given as `null` (or with nothing after the colon) takes its
default; an empty block, or one holding only comments, needs nothing. A name is a non-empty
string; surrounding spaces are dropped and case is ignored; a model name may carry a tag
(`qwen2.5-coder:7b`). Types are strict: `estimate_minutes: "20"`, `estimate_minutes: 2.5`,
`split: "no"` and `tools: [3]` are problems, not conversions. The YAML is read with a safe
loader (it never builds Python objects); anchors and aliases work; a key given twice in one
mapping is a problem.

Fences follow CommonMark: three or more backticks or tildes (`~~~bzzz-task` works too), at most
three spaces of indentation; the block ends at a line holding only the same kind of fence at
least as long as the opening one; the opening fence's indentation is removed from the block's
lines. The info string is matched without regard to case (`BZZZ-TASK`), and words after
`bzzz-task` are ignored. Line endings may be `\\n`, `\\r\\n` or `\\r`. A `bzzz-task` block inside
another code block is an example of the format, not a requirement, and is ignored, provided the
outer block is closed and its fence is longer or of the other character (as around the example
above), so that GitHub too shows it as an example.

Each of these is a problem, and the issue is not taken; if the block has any problem, none of
its values are used (every problem in it is reported, not just the first):

- a block that is not YAML, or holds more than one YAML document;
- a block whose YAML is not a mapping (a list, a string, ...);
- an unknown key, at the top or under `needs` (a typo must not silently drop a requirement);
- a value of the wrong type, an empty name, `estimate_minutes` below 1, a key given twice;
- more than one `bzzz-task` block in the body (say it once);
- a block that is never closed;
- a block of more than 8 KiB (8192 bytes of UTF-8), or with brackets (`[`, `{`) nested more than
  32 deep, counted over the raw text: its content is not parsed at all (PyYAML would take
  seconds over a few thousand);
- what looks like a `bzzz-task` fence but is not one GitHub would render as such: indented four
  or more spaces, in a quote or a list item, or swallowed by an earlier code block that was not
  closed before it (one never closed, or one that the task block's own closing fence ends).

### Matching (`assess`)

Names are compared without regard to case. Every needed tool must be among the agent's tools,
every needed language among its languages, and every `needs:<name>` among either. A needed
model is met by an agent model equal to it or starting with it followed by `:` (a tag):
`qwen2.5-coder` is met by `qwen2.5-coder:7b`, but `qwen2.5-coder:7b` is not met by
`qwen2.5-coder:32b`, and `qwen2` is not met by `qwen2.5-coder`. An agent's `LabelFilter`
comes first: the issue must carry every `include` label and none of the `exclude` labels
(case ignored). `assess` reports every reason, not just the first, in this order: problems,
filters, tools, languages, tools-or-languages, models; each a sentence for the agent's log,
for example `needs tool 'pytest', this agent has: git, ruff`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_BRACKET_DEPTH",
    "Capabilities",
    "LabelFilter",
    "TaskSpec",
    "Verdict",
    "assess",
    "parse_task",
]

MAX_BLOCK_BYTES = 8 * 1024
"""A `bzzz-task` block's content larger than this (UTF-8 bytes) is not parsed; the issue is not taken."""

MAX_BRACKET_DEPTH = 32
"""Brackets (`[`, `{`) nested deeper than this in a block: not parsed (PyYAML takes seconds on thousands)."""

_INFO_WORD = "bzzz-task"
_LABEL = re.compile(r"\s*needs\s*:(.*)", re.IGNORECASE | re.DOTALL)
_KINDS = ("language", "model", "tool")
_TOP_KEYS = ("check", "estimate_minutes", "needs", "run", "split")
MAX_COMMANDS = 20
MAX_COMMAND_CHARS = 1024
_NEEDS_KEYS = ("languages", "models", "tools")

_LINE_END = re.compile(r"\r\n|\r|\n")
# CommonMark: up to three spaces, then three or more backticks or tildes, then the info string.
_OPENING = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
# Anything a reader would take for a bzzz-task fence: after spaces, quote markers and list markers.
_LOOKALIKE = re.compile(
    r"[ \t>]*(?:(?:[-*+]|\d{1,9}[.)])[ \t][ \t>]*)*(`{3,}|~{3,})[ \t]*bzzz-task(?:[ \t]|$)", re.IGNORECASE
)


def _norm(name: str) -> str:
    return name.strip().casefold()


def _q(value: object) -> str:
    """A value quoted for a message, cut short: messages go into logs, values come from strangers."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    return ", ".join(names) if names else "none"


def _names(kind: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise TypeError(f"{kind}: expected a collection of names, got the string {_q(values)}")
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{kind}: a name must be a non-empty string, got {_q(value)}")
        out.add(_norm(value))
    return frozenset(out)


@dataclass(frozen=True, init=False)
class Capabilities:
    """What this agent has. Names are kept stripped and case-folded; models keep their tags."""

    models: frozenset[str]
    tools: frozenset[str]
    languages: frozenset[str]

    def __init__(
        self, models: Iterable[str] = (), tools: Iterable[str] = (), languages: Iterable[str] = ()
    ) -> None:
        object.__setattr__(self, "models", _names("models", models))
        object.__setattr__(self, "tools", _names("tools", tools))
        object.__setattr__(self, "languages", _names("languages", languages))

    def has_model(self, need: str) -> bool:
        """True if some model here is `need` itself or `need` with a tag (`need:...`)."""
        need = _norm(need)
        return any(model == need or model.startswith(need + ":") for model in self.models)


@dataclass(frozen=True)
class TaskSpec:
    """What an issue needs, from its labels and its `bzzz-task` block together.

    `problems` non-empty means the requirements could not be read, and the issue must not be
    taken; the other fields then hold only what could be read.
    """

    needs_models: frozenset[str] = frozenset()
    needs_tools: frozenset[str] = frozenset()
    needs_languages: frozenset[str] = frozenset()
    needs_tools_or_languages: frozenset[str] = frozenset()
    """From bare `needs:<name>` labels: met by a tool or a language of that name."""
    estimate_minutes: int | None = None
    split: bool = False
    run: tuple[tuple[str, ...], ...] = ()
    """Commands to run in the repository (each a program and its arguments), in order."""
    check: tuple[tuple[str, ...], ...] = ()
    """The project's checks that a model's change must pass."""
    problems: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class LabelFilter:
    """Which issues this agent considers: all of `include`, none of `exclude` (case ignored)."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        include = _names("include", self.include)
        exclude = _names("exclude", self.exclude)
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


# --- the body -------------------------------------------------------------------------------


@dataclass
class _Block:
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


def _scan(body: str) -> tuple[list[_Block], list[str]]:
    """The body's top-level `bzzz-task` blocks, and problems with fences that look like one."""
    blocks: list[_Block] = []
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
                blocks.append(_Block(fence.line, "\n".join(fence.lines), closed=True))
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
            blocks.append(_Block(fence.line, "\n".join(fence.lines), closed=False))
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


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {_q(key_node.value)} is given twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: Exception, first_line: int) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        text = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        where = f" (body line {first_line + mark.line})" if mark is not None else ""
        return f"not valid YAML: {' '.join(text.split())}{where}"
    if isinstance(exc, yaml.YAMLError):
        return f"not valid YAML: {' '.join(str(exc).split())[:200]}"
    if isinstance(exc, RecursionError):
        return "not readable YAML: nested too deeply"
    return f"not readable YAML: {type(exc).__name__}"


def _bracket_depth(text: str) -> int:
    """How deep `[` and `{` nest in the raw text, quotes and comments included (so never less than YAML's)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def _kind(value: object) -> str:
    """What a YAML value is, in YAML's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({_q(value)})"
    if isinstance(value, str):
        return f"a string ({_q(value)})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _name_list(key: str, value: object, problems: list[str]) -> frozenset[str]:
    items: list[object]
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        problems.append(f"{key} must be a list of names or one name, not {_kind(value)}")
        return frozenset()
    names: set[str] = set()
    for index, item in enumerate(items, start=1):
        if not isinstance(item, str):
            problems.append(f"{key}: item {index} must be a name (a string), not {_kind(item)}")
        elif not item.strip():
            problems.append(f"{key}: item {index} is an empty name")
        else:
            names.add(_norm(item))
    return frozenset(names)


def _unknown_keys(data: dict[Any, Any], known: tuple[str, ...], under: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            problems.append(f"unknown key {_q(key)}{under} (known: {', '.join(known)})")


@dataclass
class _BlockValues:
    models: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    estimate_minutes: int | None = None
    split: bool = False
    run: tuple[tuple[str, ...], ...] = ()
    check: tuple[tuple[str, ...], ...] = ()


def _commands(value: object, problems: list[str], key: str = "run") -> tuple[tuple[str, ...], ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        problems.append(f"{key} must be a list of commands or one command, not {_kind(value)}")
        return ()
    if len(items) > MAX_COMMANDS:
        problems.append(f"{key} has {len(items)} commands, more than {MAX_COMMANDS}")
        return ()
    commands: list[tuple[str, ...]] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, str):
            problems.append(f"{key}: command {index} must be a string, not {_kind(item)}")
        elif len(item) > MAX_COMMAND_CHARS:
            problems.append(f"{key}: command {index} is longer than {MAX_COMMAND_CHARS} characters")
        elif "\n" in item.strip() or "\r" in item:
            problems.append(f"{key}: command {index} must be one line")
        else:
            try:
                argv = tuple(shlex.split(item))
            except ValueError as err:
                problems.append(f"{key}: command {index} cannot be split into words: {err}")
                continue
            if not argv:
                problems.append(f"{key}: command {index} is empty")
            else:
                commands.append(argv)
    return tuple(commands)


def _read_block(block: _Block) -> tuple[_BlockValues, list[str]]:
    """The block's values and no problems, or the defaults and every problem found."""
    prefix = f"bzzz-task block (line {block.line}): "
    size = len(block.content.encode("utf-8", "surrogatepass"))
    if size > MAX_BLOCK_BYTES:
        return _BlockValues(), [f"{prefix}{size} bytes, over the limit of {MAX_BLOCK_BYTES} (8 KiB); not read"]
    if not block.closed:
        return _BlockValues(), [f"{prefix}never closed (no closing fence)"]
    if _bracket_depth(block.content) > MAX_BRACKET_DEPTH:
        return _BlockValues(), [f"{prefix}brackets nested more than {MAX_BRACKET_DEPTH} deep; not read"]
    try:
        data = yaml.load(block.content, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except Exception as exc:  # anything at all: a task we cannot read is a task we do not take
        return _BlockValues(), [prefix + _yaml_problem(exc, block.line + 1)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return _BlockValues(), [f"{prefix}must hold a YAML mapping (key: value lines), not {_kind(data)}"]

    problems: list[str] = []
    values = _BlockValues()
    _unknown_keys(data, _TOP_KEYS, "", problems)
    needs = data.get("needs")
    if needs is None:
        needs = {}
    if isinstance(needs, dict):
        _unknown_keys(needs, _NEEDS_KEYS, " under needs", problems)
        values.models = _name_list("needs.models", needs.get("models"), problems)
        values.tools = _name_list("needs.tools", needs.get("tools"), problems)
        values.languages = _name_list("needs.languages", needs.get("languages"), problems)
    else:
        problems.append(f"needs must be a mapping (tools, languages, models), not {_kind(needs)}")
    estimate = data.get("estimate_minutes")
    if estimate is not None and (isinstance(estimate, bool) or not isinstance(estimate, int)):
        problems.append(f"estimate_minutes must be a whole number of minutes, not {_kind(estimate)}")
    elif estimate is not None and estimate < 1:
        problems.append(f"estimate_minutes must be at least 1, not {estimate}")
    else:
        values.estimate_minutes = estimate
    values.run = _commands(data.get("run"), problems)
    values.check = _commands(data.get("check"), problems, "check")
    split = data.get("split")
    if split is None or isinstance(split, bool):
        values.split = bool(split)
    else:
        problems.append(f"split must be true or false, not {_kind(split)}")
    if problems:
        return _BlockValues(), [prefix + problem for problem in problems]
    return values, []


# --- labels ---------------------------------------------------------------------------------


def _read_labels(labels: Sequence[str]) -> tuple[dict[str, set[str]], list[str]]:
    """`needs:` labels by kind ('' for a bare `needs:<name>`), and problems."""
    needs: dict[str, set[str]] = {"": set(), **{kind: set() for kind in _KINDS}}
    problems: list[str] = []
    for label in labels:
        match = _LABEL.fullmatch(label)
        if match is None:
            continue
        kind, sep, name = match.group(1).partition(":")
        kind, name = _norm(kind), _norm(name)
        if not sep:
            if not kind:
                problems.append(f"label {_q(label)} names nothing (write needs:<name>)")
            elif kind in _KINDS:
                problems.append(f"label {_q(label)} names no {kind} (write needs:{kind}:<name>)")
            else:
                needs[""].add(kind)
        elif kind not in _KINDS:
            problems.append(f"label {_q(label)} has an unknown kind {_q(kind)} (known: {', '.join(_KINDS)})")
        elif not name:
            problems.append(f"label {_q(label)} names no {kind} (write needs:{kind}:<name>)")
        else:
            needs[kind].add(name)
    return needs, problems


# --- the API --------------------------------------------------------------------------------


def parse_task(title: str, body: str | None, labels: Sequence[str]) -> TaskSpec:
    """What the issue needs, from its labels and its body's `bzzz-task` block. Never raises."""
    del title  # not read; see the module's documentation
    label_needs, problems = _read_labels(labels)
    values = _BlockValues()
    blocks, fence_problems = _scan(body or "")
    problems += fence_problems
    if len(blocks) > 1:
        lines = ", ".join(str(block.line) for block in blocks)
        problems.append(f"the body has {len(blocks)} bzzz-task blocks (lines {lines}); there must be at most one")
    elif blocks:
        values, block_problems = _read_block(blocks[0])
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


def assess(spec: TaskSpec, labels: Sequence[str], caps: Capabilities, filters: LabelFilter) -> Verdict:
    """Whether an agent with `caps` and `filters` may take an issue with `labels` needing `spec`."""
    reasons = [f"cannot read what the task needs: {problem}" for problem in spec.problems]
    have = {_norm(label) for label in labels}
    for label in sorted(filters.include - have):
        reasons.append(f"not labelled {_q(label)}, which this agent requires")
    for label in sorted(filters.exclude & have):
        reasons.append(f"labelled {_q(label)}, which this agent does not take")
    for tool in sorted(spec.needs_tools - caps.tools):
        reasons.append(f"needs tool {_q(tool)}, this agent has: {_listing(caps.tools)}")
    for language in sorted(spec.needs_languages - caps.languages):
        reasons.append(f"needs language {_q(language)}, this agent has: {_listing(caps.languages)}")
    for name in sorted(spec.needs_tools_or_languages - caps.tools - caps.languages):
        reasons.append(
            f"needs {_q(name)} (a tool or a language), this agent has tools: {_listing(caps.tools)};"
            f" languages: {_listing(caps.languages)}"
        )
    for model in sorted(spec.needs_models):
        if not caps.has_model(model):
            reasons.append(f"needs model {_q(model)} (any tag), this agent has: {_listing(caps.models)}")
    return Verdict(ok=not reasons, reasons=tuple(reasons))
