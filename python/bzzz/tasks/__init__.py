"""The task, defined once: which issue, what it needs, whether this agent may take it, how it ended.

* `types`: `IssueRef` (`owner/name#12`), `TaskSpec` (what an issue asks), `Outcome` (how the
  work ended: what the executor reports and the github agent acts on);
* `parse`: `parse_task`, the spec of an issue, from `labels` (`needs:` labels), `fences` (the
  `bzzz-task` blocks of its body) and `block` (reading one block);
* `assess`: whether this agent may take it (`LabelFilter`, `Verdict`, `assess`).

An open issue says what it needs in two places, both optional: its **labels** and one
**`bzzz-task` block** in its body. The two are added together (a union). An issue that says
nothing needs nothing, and any agent may take it. An issue whose requirements cannot be read
is never taken: `parse_task` never raises, it returns a `TaskSpec` whose `problems` say what
is wrong, and `assess` turns each problem into a reason not to take the issue. Which issues an
agent looks at at all is its own configuration, a `LabelFilter`, not something the issue says.

```python
caps = Capabilities(models=["qwen2.5-coder:7b"], tools=["git", "pytest"], languages=["python"])  # bzzz.capabilities
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
| `run`              | list of commands, or one   | `[]`    | run in the repository, in order (the command executor) |
| `check`            | list of commands, or one   | `[]`    | checks a model's change must pass (the model executor) |

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
model is met as `bzzz.capabilities.names` says (the one rule for models, used by the executor
and hmmm too): without a tag, by that model with any tag (`qwen2.5-coder` by
`qwen2.5-coder:7b`); with a tag, by that tag only (`qwen2.5-coder:7b` is not met by
`qwen2.5-coder:32b`), where an installed model without a tag is `:latest`; and `qwen2` is not
met by `qwen2.5-coder`. An agent's `LabelFilter`
comes first: the issue must carry every `include` label and none of the `exclude` labels
(case ignored). `assess` reports every reason, not just the first, in this order: problems,
filters, tools, languages, tools-or-languages, models; each a sentence for the agent's log,
for example `needs tool 'pytest', this agent has: git, ruff`.
"""

from bzzz.tasks.assess import LabelFilter, Verdict, assess
from bzzz.tasks.block import MAX_BLOCK_BYTES, MAX_BRACKET_DEPTH
from bzzz.tasks.parse import parse_task
from bzzz.tasks.types import IssueRef, Outcome, TaskSpec

__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_BRACKET_DEPTH",
    "IssueRef",
    "LabelFilter",
    "Outcome",
    "TaskSpec",
    "Verdict",
    "assess",
    "parse_task",
]
