"""Reading one `bzzz-task` block: its YAML mapping, checked key by key.

The format (keys, types, defaults, limits, what is a problem) is in the package documentation
(`bzzz.tasks`). `read_block` never raises: it returns the block's values and no problems, or
the defaults and every problem found, so that a block with any problem is used for nothing.
"""

from __future__ import annotations

import shlex
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from bzzz.capabilities.names import normalize, quoted
from bzzz.tasks.fences import Block

__all__ = ["MAX_BLOCK_BYTES", "MAX_BRACKET_DEPTH", "MAX_COMMANDS", "MAX_COMMAND_CHARS", "BlockValues", "read_block"]

MAX_BLOCK_BYTES = 8 * 1024
"""A `bzzz-task` block's content larger than this (UTF-8 bytes) is not parsed; the issue is not taken."""

MAX_BRACKET_DEPTH = 32
"""Brackets (`[`, `{`) nested deeper than this in a block: not parsed (PyYAML takes seconds on thousands)."""

MAX_COMMANDS = 20
MAX_COMMAND_CHARS = 1024

_TOP_KEYS = ("check", "estimate_minutes", "needs", "run", "split")
_NEEDS_KEYS = ("languages", "models", "tools")


@dataclass
class BlockValues:
    """What a block says; the defaults are what an empty block says."""

    models: frozenset[str] = frozenset()
    tools: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    estimate_minutes: int | None = None
    split: bool = False
    run: tuple[tuple[str, ...], ...] = ()
    check: tuple[tuple[str, ...], ...] = ()


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"the key {quoted(key_node.value)} is given twice", key_node.start_mark
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
    if isinstance(value, int | float):
        return f"a number ({quoted(value)})"
    if isinstance(value, str):
        return f"a string ({quoted(value)})"
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
            names.add(normalize(item))
    return frozenset(names)


def _unknown_keys(data: dict[Any, Any], known: tuple[str, ...], under: str, problems: list[str]) -> None:
    for key in data:
        if key not in known:
            problems.append(f"unknown key {quoted(key)}{under} (known: {', '.join(known)})")


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


def read_block(block: Block) -> tuple[BlockValues, list[str]]:
    """The block's values and no problems, or the defaults and every problem found."""
    prefix = f"bzzz-task block (line {block.line}): "
    size = len(block.content.encode("utf-8", "surrogatepass"))
    if size > MAX_BLOCK_BYTES:
        return BlockValues(), [f"{prefix}{size} bytes, over the limit of {MAX_BLOCK_BYTES} (8 KiB); not read"]
    if not block.closed:
        return BlockValues(), [f"{prefix}never closed (no closing fence)"]
    if _bracket_depth(block.content) > MAX_BRACKET_DEPTH:
        return BlockValues(), [f"{prefix}brackets nested more than {MAX_BRACKET_DEPTH} deep; not read"]
    try:
        data = yaml.load(block.content, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except Exception as exc:  # anything at all: a task we cannot read is a task we do not take
        return BlockValues(), [prefix + _yaml_problem(exc, block.line + 1)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return BlockValues(), [f"{prefix}must hold a YAML mapping (key: value lines), not {_kind(data)}"]

    problems: list[str] = []
    values = BlockValues()
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
        return BlockValues(), [prefix + problem for problem in problems]
    return values, []
