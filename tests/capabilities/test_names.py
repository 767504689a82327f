"""The one model matcher: the github agent's assessment, the executor's model choice and hmmm's
help desk all decide with it (their own tests keep the cases each relied on)."""

from __future__ import annotations

import pytest

from bzzz.capabilities import choose_model, matches, satisfied


@pytest.mark.parametrize(
    ("need", "have", "met"),
    [
        ("qwen2.5-coder", "qwen2.5-coder:7b", True),  # no tag needed: any tag
        ("qwen2.5-coder", "qwen2.5-coder", True),
        ("qwen2.5-coder:7b", "qwen2.5-coder:32b", False),  # a tag needed: that tag only
        ("qwen2.5-coder:7b", "qwen2.5-coder", False),  # an installed name without a tag is :latest
        ("llama3:latest", "llama3", True),
        ("llama3:latest", "LLAMA3:Latest", True),
        ("qwen2", "qwen2.5-coder:7b", False),  # another model, not a tag of this one
        ("localhost:5000/team/coder", "localhost:5000/team/coder:7b", True),  # a port is not a tag
        ("localhost:5000/team/coder", "localhost:5000/team/other:7b", False),
        (" make ", "Make", True),
    ],
)
def test_a_need_is_met_by_the_model_with_any_tag_or_the_tag_it_names(need: str, have: str, met: bool) -> None:
    assert matches(need, have) is met


def test_a_need_is_satisfied_by_any_of_the_names_an_agent_has() -> None:
    assert satisfied("llama3:latest", ["gemma3:270m", "llama3"])
    assert not satisfied("llama3:8b", ["gemma3:270m", "llama3"])
    assert not satisfied("llama3", [])


def test_the_executor_and_the_thinker_choose_by_the_same_rule() -> None:
    assert choose_model(frozenset({"llama3:latest"}), ["gemma3:270m", "llama3"], None) == "llama3"
    assert choose_model(frozenset(), ["gemma3:270m", "llama3"], "llama3:latest") == "llama3"
