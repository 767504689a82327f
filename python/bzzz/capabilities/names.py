"""How a needed name is compared with what an agent has: the one model matcher.

Names (tools, languages, models, labels) are compared stripped and without regard to case.
A model name may carry a tag after its last `:` (`qwen2.5-coder:7b`; a registry host's port,
`host:5000/name`, is not a tag). Ollama's rule decides what an installed name stands for: one
without a tag is `:latest`. A needed name:

- without a tag is met by that model with any tag: `qwen2.5-coder` by `qwen2.5-coder:7b`,
  `qwen2.5-coder:32b-instruct` and `qwen2.5-coder` itself; never by another model
  (`qwen2` is not met by `qwen2.5-coder`);
- with a tag is met by that model with that tag only: `qwen2.5-coder:7b` not by
  `qwen2.5-coder:32b`, nor by an untagged `qwen2.5-coder` (which is `:latest`), and
  `llama3:latest` by `llama3`.

A name that is not a model (`make`, `python`) has no tag, and is met by itself.

```python
matches("qwen2.5-coder", "QWEN2.5-Coder:7B")                        # True
satisfied("make", {"git", "make"})                                   # True
choose_model(frozenset(), ["gemma3:270m", "llama3:latest"], "llama3")  # 'llama3:latest'
```
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["choose_model", "matches", "name_set", "normalize", "quoted", "satisfied"]

_LATEST = "latest"


def normalize(name: str) -> str:
    """`name` as compared: stripped and case-folded."""
    return name.strip().casefold()


def quoted(value: object) -> str:
    """A value quoted for a message, cut short: messages go into logs, values come from strangers."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def name_set(kind: str, values: Iterable[str]) -> frozenset[str]:
    """`values` normalized; TypeError for a bare string (a collection was meant), ValueError for an empty name."""
    if isinstance(values, str):
        raise TypeError(f"{kind}: expected a collection of names, got the string {quoted(values)}")
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{kind}: a name must be a non-empty string, got {quoted(value)}")
        out.add(normalize(value))
    return frozenset(out)


def _split(name: str) -> tuple[str, str | None]:
    """(the model, its tag or None); the tag follows the last `:` after the last `/`."""
    name = normalize(name)
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :]
    return name, None


def matches(need: str, have: str) -> bool:
    """Whether the name `have` (installed, offered) meets the needed name `need` (module doc)."""
    need_model, need_tag = _split(need)
    have_model, have_tag = _split(have)
    return need_model == have_model and (need_tag is None or need_tag == (have_tag or _LATEST))


def satisfied(need: str, have: Iterable[str]) -> bool:
    """Whether some name in `have` meets `need`."""
    return any(matches(need, name) for name in have)


def choose_model(needs: frozenset[str], installed: Sequence[str], default: str | None) -> str | None:
    """The installed model to use: one a need names (needs in sorted order), else the default,
    else the first installed; None if a need or the default is given and nothing meets it."""
    for want in sorted(needs):
        for have in installed:
            if matches(want, have):
                return have
    if needs:
        return None
    if default is not None:
        return next((have for have in installed if matches(default, have)), None)
    return installed[0] if installed else None
