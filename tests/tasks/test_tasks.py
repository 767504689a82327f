"""What an issue needs (labels and a `bzzz-task` block), and whether an agent may take it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bzzz import tasks
from bzzz.capabilities import Capabilities
from bzzz.tasks import (
    MAX_BLOCK_BYTES,
    MAX_BRACKET_DEPTH,
    LabelFilter,
    TaskSpec,
    Verdict,
    assess,
    parse_task,
)

EVERYTHING = Capabilities(
    models=["qwen2.5-coder:7b", "llama3"], tools=["git", "pytest", "ruff"], languages=["python", "rust"]
)
NO_FILTER = LabelFilter()


def block(yaml_text: str, fence: str = "```", info: str = "bzzz-task") -> str:
    return f"{fence}{info}\n{yaml_text}\n{fence}"


def spec_of(body: str | None, labels: list[str] | None = None) -> TaskSpec:
    return parse_task("A title", body, labels or [])


def problems_of(body: str | None, labels: list[str] | None = None) -> tuple[str, ...]:
    spec = spec_of(body, labels)
    assert spec.problems, f"expected problems, got {spec}"
    assert not spec.readable
    return spec.problems


def verdict(
    spec: TaskSpec, caps: Capabilities = EVERYTHING, labels: list[str] | None = None, filters: LabelFilter = NO_FILTER
) -> Verdict:
    return assess(spec, labels or [], caps, filters)


# --- an issue that says nothing ---------------------------------------------------------------


@pytest.mark.parametrize("body", [None, "", "Please fix the typo in the README.", "```python\nprint(1)\n```"])
def test_an_issue_that_says_nothing_needs_nothing_and_any_agent_may_take_it(body: str | None) -> None:
    spec = spec_of(body, ["bug", "good first issue"])
    assert spec == TaskSpec()
    assert spec.readable
    assert verdict(spec, Capabilities()) == Verdict(ok=True)


# --- the task block ---------------------------------------------------------------------------


def test_a_task_block_in_the_body_names_what_the_task_needs() -> None:
    body = block(
        "needs:\n"
        "  tools: [git, pytest]\n"
        "  models: [qwen2.5-coder]        # any tag\n"
        "  languages: [python]\n"
        "estimate_minutes: 20\n"
        "split: true"
    )
    assert spec_of(body) == TaskSpec(
        needs_models=frozenset({"qwen2.5-coder"}),
        needs_tools=frozenset({"git", "pytest"}),
        needs_languages=frozenset({"python"}),
        estimate_minutes=20,
        split=True,
    )


def test_the_block_may_sit_among_prose_and_other_code_blocks() -> None:
    body = (
        "The parser drops the last line.\n\n"
        "```python\nparse('a\\nb')\n```\n\n"
        "Steps:\n1. read\n2. fix\n\n" + block("needs: {tools: [pytest]}") + "\n\nThanks!\n```\nlog output\n```\n"
    )
    assert spec_of(body).needs_tools == {"pytest"}


def test_tilde_fences_and_longer_fences_work_too() -> None:
    assert spec_of(block("needs: {tools: [git]}", fence="~~~")).needs_tools == {"git"}
    assert spec_of("````bzzz-task\nneeds: {tools: [git]}\n```\nstill inside\n````").problems  # ``` does not close ````
    assert spec_of("````bzzz-task\nneeds: {tools: [git]}\n`````").needs_tools == {"git"}


def test_the_info_string_is_matched_without_regard_to_case_and_later_words_are_ignored() -> None:
    assert spec_of(block("needs: {tools: [git]}", info="BZZZ-Task")).needs_tools == {"git"}
    assert spec_of(block("needs: {tools: [git]}", info=" bzzz-task yaml")).needs_tools == {"git"}
    assert spec_of(block("needs: {tools: [git]}", info="yaml bzzz-task")) == TaskSpec()  # not a task block


def test_a_fence_indented_up_to_three_spaces_counts_and_its_indentation_is_removed() -> None:
    body = "   ```bzzz-task\n   needs:\n     tools: [git]\n   ```"
    assert spec_of(body).needs_tools == {"git"}


def test_windows_and_old_mac_line_endings_are_understood() -> None:
    text = block("needs:\n  tools: [git]\nestimate_minutes: 5")
    assert spec_of(text.replace("\n", "\r\n")).needs_tools == {"git"}
    assert spec_of(text.replace("\n", "\r")).estimate_minutes == 5


def test_one_name_may_stand_for_a_list_and_null_takes_the_default() -> None:
    assert spec_of(block("needs:\n  tools: git\n  models:\nestimate_minutes:\nsplit:")) == TaskSpec(
        needs_tools=frozenset({"git"})
    )
    assert spec_of(block("needs:")) == TaskSpec()


def test_an_empty_block_or_one_of_only_comments_needs_nothing() -> None:
    assert spec_of(block("")) == TaskSpec()
    assert spec_of(block("# nothing special")) == TaskSpec()


def test_names_are_kept_stripped_and_case_folded() -> None:
    spec = spec_of(block("needs: {tools: [' Git '], models: [Qwen2.5-Coder:7B], languages: [Python]}"))
    assert spec.needs_tools == {"git"}
    assert spec.needs_models == {"qwen2.5-coder:7b"}
    assert spec.needs_languages == {"python"}


def test_a_block_inside_a_closed_code_block_is_an_example_not_a_requirement() -> None:
    body = "How to write one:\n\n````markdown\n" + block("needs: {tools: [pytest]}") + "\n````\n"
    assert spec_of(body) == TaskSpec()


def test_the_example_in_the_documentation_reads_as_documented() -> None:
    assert tasks.__doc__ is not None
    match = re.search(r"^```bzzz-task\n.*?^```$", tasks.__doc__, re.MULTILINE | re.DOTALL)
    assert match is not None
    assert spec_of("Some prose.\n\n" + match.group(0) + "\n\nMore prose.") == TaskSpec(
        needs_models=frozenset({"qwen2.5-coder"}),
        needs_tools=frozenset({"git", "pytest"}),
        needs_languages=frozenset({"python"}),
        estimate_minutes=20,
        split=False,
    )


# --- blocks that cannot be read: problems, never exceptions, and the issue is not taken --------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("priority: high", "unknown key 'priority' (known: check, estimate_minutes, needs, run, split)"),
        ("needs: {tool: [git]}", "unknown key 'tool' under needs (known: languages, models, tools)"),
        ("Needs: {tools: [git]}", "unknown key 'Needs'"),
    ],
)
def test_an_unknown_key_rejects_the_block_so_a_typo_cannot_drop_a_requirement(yaml_text: str, expected: str) -> None:
    (problem,) = problems_of(block(yaml_text))
    assert problem.startswith("bzzz-task block (line 1): ")
    assert expected in problem


def test_a_block_with_a_problem_contributes_none_of_its_values() -> None:
    spec = spec_of(block("needs: {tools: [git]}\nestimate_minutes: 5\nsplit: true\ncolour: blue"))
    assert (spec.needs_tools, spec.estimate_minutes, spec.split) == (frozenset(), None, False)


@pytest.mark.parametrize(
    "yaml_text",
    ["needs: [git", "needs:\n\ttools: [git]", "a: b: c", "needs: {tools: [git]}\n---\nsplit: true", "x: '\x07'"],
    ids=["unclosed-flow", "tab-indent", "nested-colon", "two-documents", "control-character"],
)
def test_a_block_that_is_not_yaml_is_a_problem(yaml_text: str) -> None:
    (problem,) = problems_of("Intro\n\n" + block(yaml_text))
    assert problem.startswith("bzzz-task block (line 3): not valid YAML: ")
    assert "\n" not in problem


def test_a_yaml_error_points_at_the_line_of_the_body() -> None:
    (problem,) = problems_of("one\ntwo\n" + block("needs:\n  tools: [git\nsplit: true"))
    assert re.search(r"\(body line [4-6]\)$", problem), problem


@pytest.mark.parametrize(
    ("yaml_text", "kind"),
    [("- git\n- pytest", "a list"), ("just some words", "a string ('just some words')"), ("42", "a number (42)")],
)
def test_a_block_that_is_not_a_mapping_is_a_problem(yaml_text: str, kind: str) -> None:
    assert problems_of(block(yaml_text)) == (
        f"bzzz-task block (line 1): must hold a YAML mapping (key: value lines), not {kind}",
    )


def test_two_blocks_are_a_problem_even_if_they_agree() -> None:
    body = block("needs: {tools: [git]}") + "\n\nand again\n\n" + block("needs: {tools: [git]}", fence="~~~")
    assert problems_of(body) == ("the body has 2 bzzz-task blocks (lines 1, 7); there must be at most one",)


def test_a_block_over_8_kib_is_not_read() -> None:
    filler = "# " + "x" * (MAX_BLOCK_BYTES - len("split: true\n# "))
    at_limit = "split: true\n" + filler
    assert len(at_limit.encode()) == MAX_BLOCK_BYTES
    assert spec_of(block(at_limit)).split is True
    (problem,) = problems_of(block(at_limit + "é"))  # two bytes in UTF-8
    assert problem == f"bzzz-task block (line 1): {MAX_BLOCK_BYTES + 2} bytes, over the limit of 8192 (8 KiB); not read"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-5", "estimate_minutes must be at least 1, not -5"),
        ("0", "estimate_minutes must be at least 1, not 0"),
        ("2.5", "estimate_minutes must be a whole number of minutes, not a number (2.5)"),
        ("'20'", "estimate_minutes must be a whole number of minutes, not a string ('20')"),
        ("true", "estimate_minutes must be a whole number of minutes, not a boolean (true)"),
        ("2024-05-01", "estimate_minutes must be a whole number of minutes, not a date"),
    ],
)
def test_the_estimate_is_a_positive_whole_number_of_minutes(value: str, expected: str) -> None:
    assert problems_of(block(f"estimate_minutes: {value}")) == (f"bzzz-task block (line 1): {expected}",)


@pytest.mark.parametrize("value", ["'no'", "1", "[true]"])
def test_split_is_true_or_false(value: str) -> None:
    (problem,) = problems_of(block(f"split: {value}"))
    assert "split must be true or false" in problem


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("needs: [git]", "needs must be a mapping (tools, languages, models), not a list"),
        ("needs: {tools: {git: 1}}", "needs.tools must be a list of names or one name, not a mapping"),
        ("needs: {languages: [python, 3]}", "needs.languages: item 2 must be a name (a string), not a number (3)"),
        ("needs: {models: ['  ']}", "needs.models: item 1 is an empty name"),
        ("needs: {tools: [git]}\nneeds: {tools: [pytest]}", "the key 'needs' is given twice"),
    ],
)
def test_values_of_the_wrong_type_are_problems_not_conversions(yaml_text: str, expected: str) -> None:
    (problem,) = problems_of(block(yaml_text))
    assert expected in problem


def test_every_problem_in_a_block_is_reported_not_just_the_first() -> None:
    problems = problems_of(block("needs: {tool: git, tools: 3}\nestimate_minutes: -1\nsplit: maybe\nfoo: 1"))
    assert len(problems) == 5


def test_a_block_that_is_never_closed_is_a_problem() -> None:
    assert problems_of("Intro\n```bzzz-task\nneeds: {tools: [git]}\n") == (
        "bzzz-task block (line 2): never closed (no closing fence)",
    )


@pytest.mark.parametrize(
    "body",
    [
        "    ```bzzz-task\n    needs: {tools: [git]}\n    ```",
        "> ```bzzz-task\n> needs: {tools: [git]}\n> ```",
        "- step one\n- ```bzzz-task\n  needs: {tools: [git]}\n  ```",
        "1. ```bzzz-task\n   needs: {tools: [git]}\n   ```",
        "```python\nprint(1)\n\n```bzzz-task\nneeds: {tools: [git]}\n```\n",  # the python block swallows it
        "~~~python\nprint(1)\n\n```bzzz-task\nneeds: {tools: [git]}\n```\n",  # ... and is never closed
    ],
    ids=["indented", "quoted", "list-item", "numbered-list-item", "swallowed", "swallowed-unclosed"],
)
def test_what_looks_like_a_task_block_but_is_not_one_is_a_problem_not_silence(body: str) -> None:
    (problem,) = problems_of(body)
    assert problem.startswith(("line 1: ", "line 2: ", "line 4: ")) and "bzzz-task fence" in problem


def test_yaml_that_would_build_python_objects_is_refused() -> None:
    (problem,) = problems_of(block("split: !!python/object/apply:os.system ['true']"))
    assert "not valid YAML" in problem


def test_brackets_nested_too_deeply_are_not_parsed() -> None:
    deep = "needs: {tools: " + "[" * (MAX_BRACKET_DEPTH - 1) + "git" + "]" * (MAX_BRACKET_DEPTH - 1) + "}"
    (problem,) = problems_of(block(deep))
    assert "item 1 must be a name (a string), not a list" in problem  # read, and wrong
    assert problems_of(block("needs: " + "{" * 4000)) == (
        f"bzzz-task block (line 1): brackets nested more than {MAX_BRACKET_DEPTH} deep; not read",
    )


def test_yaml_nested_too_deeply_without_brackets_is_a_problem() -> None:
    (problem,) = problems_of(block("needs:\n" + "- " * 4000 + "git"))
    assert problem == "bzzz-task block (line 1): not readable YAML: nested too deeply"


# --- labels -----------------------------------------------------------------------------------


def test_labels_name_needs_by_kind() -> None:
    spec = spec_of(None, ["needs:tool:pytest", "needs:language:Python", "needs:model:qwen2.5-coder:7b", "needs:rust"])
    assert spec == TaskSpec(
        needs_models=frozenset({"qwen2.5-coder:7b"}),
        needs_tools=frozenset({"pytest"}),
        needs_languages=frozenset({"python"}),
        needs_tools_or_languages=frozenset({"rust"}),
    )


def test_labels_are_read_without_regard_to_case_or_surrounding_spaces() -> None:
    spec = spec_of(None, ["NEEDS:Tool:PyTest", " needs : model : Llama3 "])
    assert spec.needs_tools == {"pytest"}
    assert spec.needs_models == {"llama3"}


def test_other_labels_are_not_requirements() -> None:
    assert spec_of(None, ["bug", "bzzz-task", "needsreview", "priority:high"]) == TaskSpec()


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("needs:", "label 'needs:' names nothing (write needs:<name>)"),
        ("needs:tool:", "label 'needs:tool:' names no tool (write needs:tool:<name>)"),
        ("needs:model", "label 'needs:model' names no model (write needs:model:<name>)"),
        ("needs:gpu:cuda", "label 'needs:gpu:cuda' has an unknown kind 'gpu' (known: language, model, tool)"),
        ("needs:tools:git", "has an unknown kind 'tools'"),
    ],
)
def test_a_needs_label_that_cannot_be_read_is_a_problem(label: str, expected: str) -> None:
    (problem,) = problems_of(None, [label])
    assert expected in problem


def test_labels_and_the_block_are_added_together() -> None:
    spec = spec_of(
        block("needs: {tools: [git], models: [llama3]}\nestimate_minutes: 3"),
        ["needs:tool:pytest", "needs:tool:GIT", "needs:model:qwen2.5-coder", "needs:python"],
    )
    assert spec == TaskSpec(
        needs_models=frozenset({"llama3", "qwen2.5-coder"}),
        needs_tools=frozenset({"git", "pytest"}),
        needs_tools_or_languages=frozenset({"python"}),
        estimate_minutes=3,
    )


def test_label_problems_and_block_problems_are_all_reported() -> None:
    assert len(problems_of(block("split: 3"), ["needs:", "needs:gpu:x"])) == 3


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("need", "have", "ok"),
    [
        ("qwen2.5-coder", "qwen2.5-coder", True),
        ("qwen2.5-coder", "qwen2.5-coder:7b", True),
        ("qwen2.5-coder", "QWEN2.5-Coder:32B-Instruct", True),
        ("qwen2.5-coder:7b", "qwen2.5-coder:7b", True),
        ("qwen2.5-coder:7b", "qwen2.5-coder:32b", False),
        ("qwen2.5-coder:7b", "qwen2.5-coder", False),
        ("qwen2", "qwen2.5-coder:7b", False),
        ("qwen2.5", "qwen2.5-coder", False),
    ],
)
def test_a_needed_model_is_met_by_that_model_with_any_tag(need: str, have: str, ok: bool) -> None:
    caps = Capabilities(models=[have])
    assert caps.has_model(need) is ok
    assert verdict(spec_of(block(f"needs: {{models: ['{need}']}}")), caps).ok is ok
    assert verdict(spec_of(None, [f"needs:model:{need}"]), caps).ok is ok


def test_every_needed_tool_and_language_must_be_had() -> None:
    spec = spec_of(block("needs: {tools: [git, pytest], languages: [python]}"))
    assert verdict(spec, Capabilities(tools=["git", "pytest"], languages=["python"])).ok
    assert not verdict(spec, Capabilities(tools=["git"], languages=["python"])).ok
    assert not verdict(spec, Capabilities(tools=["git", "pytest", "python"])).ok  # a tool is not a language


@pytest.mark.parametrize(
    ("caps", "ok"),
    [
        (Capabilities(tools=["docker"]), True),
        (Capabilities(languages=["docker"]), True),
        (Capabilities(models=["docker"]), False),
        (Capabilities(tools=["git"], languages=["python"]), False),
    ],
)
def test_a_bare_needs_label_is_met_by_a_tool_or_a_language(caps: Capabilities, ok: bool) -> None:
    assert verdict(spec_of(None, ["needs:docker"]), caps).ok is ok


def test_capabilities_and_needs_are_compared_without_regard_to_case() -> None:
    caps = Capabilities(models=["Llama3:8B"], tools=["PyTest"], languages=["PYTHON"])
    assert caps == Capabilities(models=["llama3:8b"], tools=["pytest"], languages=["python"])
    spec = spec_of(block("needs: {tools: [pytest], languages: [Python], models: [LLAMA3]}"), ["Needs:PYTEST"])
    assert verdict(spec, caps) == Verdict(ok=True)


def test_a_reason_names_what_is_missing_and_what_the_agent_has() -> None:
    caps = Capabilities(models=["llama3:8b"], tools=["ruff", "git"], languages=["python"])
    spec = spec_of(block("needs: {tools: [pytest], languages: [go], models: [qwen2.5-coder]}"), ["needs:docker"])
    assert verdict(spec, caps).reasons == (
        "needs tool 'pytest', this agent has: git, ruff",
        "needs language 'go', this agent has: python",
        "needs 'docker' (a tool or a language), this agent has tools: git, ruff; languages: python",
        "needs model 'qwen2.5-coder' (any tag), this agent has: llama3:8b",
    )
    assert verdict(spec_of(None, ["needs:tool:git"]), Capabilities()).reasons == (
        "needs tool 'git', this agent has: none",
    )


def test_a_task_that_cannot_be_read_is_never_taken_even_by_an_agent_that_has_everything() -> None:
    spec = spec_of(block("needs: [git"))
    result = verdict(spec, EVERYTHING)
    assert not result.ok
    assert result.reasons == tuple(f"cannot read what the task needs: {p}" for p in spec.problems)


# --- label filters ----------------------------------------------------------------------------


def test_an_include_filter_requires_every_one_of_its_labels() -> None:
    filters = LabelFilter(include=frozenset({"bzzz-task", "ready"}))
    assert verdict(TaskSpec(), labels=["bzzz-task", "ready", "bug"], filters=filters).ok
    assert verdict(TaskSpec(), labels=["bzzz-task"], filters=filters).reasons == (
        "not labelled 'ready', which this agent requires",
    )


def test_an_exclude_filter_refuses_any_one_of_its_labels() -> None:
    filters = LabelFilter(exclude=frozenset({"wontfix", "blocked"}))
    assert verdict(TaskSpec(), labels=["bug"], filters=filters).ok
    assert verdict(TaskSpec(), labels=["bug", "blocked"], filters=filters).reasons == (
        "labelled 'blocked', which this agent does not take",
    )


def test_filters_compare_labels_without_regard_to_case() -> None:
    filters = LabelFilter(include=frozenset({"BZZZ-Task"}), exclude=frozenset({"WontFix"}))
    assert filters == LabelFilter(include=frozenset({"bzzz-task"}), exclude=frozenset({"wontfix"}))
    assert verdict(TaskSpec(), labels=["bzzz-TASK"], filters=filters).ok
    assert not verdict(TaskSpec(), labels=["bzzz-task", "wontfix"], filters=filters).ok


def test_a_filter_no_issue_could_pass_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="both included and excluded"):
        LabelFilter(include=frozenset({"ready"}), exclude=frozenset({"READY"}))


def test_every_reason_is_reported_problems_first_then_filters_then_needs() -> None:
    labels = ["needs:gpu:x", "wontfix"]
    spec = spec_of(block("needs: {tools: [make]}"), labels)
    filters = LabelFilter(include=frozenset({"bzzz-task"}), exclude=frozenset({"wontfix"}))
    result = assess(spec, labels, Capabilities(), filters)
    assert [reason.split(" ")[0] for reason in result.reasons] == ["cannot", "not", "labelled", "needs"]


# --- the types --------------------------------------------------------------------------------


def test_a_verdict_is_ok_exactly_when_it_has_no_reasons() -> None:
    with pytest.raises(ValueError):
        Verdict(ok=True, reasons=("but",))
    with pytest.raises(ValueError):
        Verdict(ok=False)


def test_capabilities_refuse_a_bare_string_or_an_empty_name() -> None:
    with pytest.raises(TypeError):
        Capabilities(tools="git")
    with pytest.raises(ValueError):
        Capabilities(tools=["git", " "])


def test_the_values_are_immutable_and_hashable() -> None:
    spec = spec_of(block("needs: {tools: [git]}"))
    assert hash(spec) == hash(spec_of(block("needs: {tools: [git]}")))
    assert len({EVERYTHING, Capabilities(tools=["git"]), NO_FILTER, Verdict(ok=True)}) == 4
    with pytest.raises(AttributeError):
        EVERYTHING.tools = frozenset()  # type: ignore[misc]


# --- never raises -----------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "```bzzz-task\n",
        "~~~bzzz-task\n",
        "````BZZZ-TASK yaml\n",
        "```\n",
        "~~~\n",
        "````\n",
        "```python\n",
        "   ",
        "    ",
        "> ",
        "- ",
        "1. ",
        "\r\n",
        "\r",
        "\n",
        "needs:\n",
        "  tools: [git, ",
        "]\n",
        "{",
        "}",
        "models: qwen:7b\n",
        "languages: python\n",
        "estimate_minutes: ",
        "-3",
        "20",
        "2.5",
        "split: ",
        "true",
        "null",
        "&a ",
        "*a",
        "!!python/object ",
        "<<: ",
        "[" * 50,
        "'",
        '"',
        "#",
        "\t",
        "\x00",
        "\ud800",
        "é",
    ]
)
LABELS = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.builds(
            lambda kind, name: f"needs:{kind}{name}",
            st.sampled_from(["", "tool:", "model:", "x:", ":"]),
            st.text(max_size=10),
        ),
    ),
    max_size=6,
)


@given(
    body=st.one_of(st.none(), st.text(), st.lists(st.one_of(FRAGMENTS, st.text(max_size=8))).map("".join)),
    labels=LABELS,
)
def test_parse_task_never_raises_whatever_the_body_and_labels(body: str | None, labels: list[str]) -> None:
    spec = parse_task("title", body, labels)
    assert all(isinstance(problem, str) and problem for problem in spec.problems)
    for names in (spec.needs_models, spec.needs_tools, spec.needs_languages, spec.needs_tools_or_languages):
        assert all(name and name == name.strip().casefold() for name in names)
    assert spec.estimate_minutes is None or spec.estimate_minutes >= 1
    result = assess(spec, labels, EVERYTHING, LabelFilter(exclude=frozenset({"wontfix"})))
    assert result.ok == (not result.reasons)
    if spec.problems:
        assert not result.ok


def test_commands_to_run_are_split_into_words_and_never_given_to_a_shell() -> None:
    body = '```bzzz-task\nrun: ["ruff format src", "sh -c \'echo hi > x\'"]\n```'
    assert parse_task("", body, []).run == (("ruff", "format", "src"), ("sh", "-c", "echo hi > x"))
    assert parse_task("", "```bzzz-task\nrun: make fmt\n```", []).run == (("make", "fmt"),)


@pytest.mark.parametrize(
    ("run", "problem"),
    [
        ("[3]", "command 1 must be a string"),
        ('["a \\"b"]', "cannot be split into words"),
        ('[""]', "command 1 is empty"),
        ("{make: fmt}", "run must be a list of commands"),
        ("[" + ", ".join(["make"] * 21) + "]", "more than 20"),
        ('["' + "x" * 1025 + '"]', "longer than 1024 characters"),
    ],
)
def test_commands_that_cannot_be_read_keep_the_issue_from_being_taken(run: str, problem: str) -> None:
    spec = parse_task("", f"```bzzz-task\nrun: {run}\n```", [])
    assert not spec.readable and problem in spec.problems[0] and spec.run == ()
