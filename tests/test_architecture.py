"""docs/architecture.md stays true: the layers it draws, the services it lists, the folders it names,
and workers that are entry points only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bzzz.config import BUILT_IN_SETTINGS, settings_model

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "bzzz"
DOC = (ROOT / "docs" / "architecture.md").read_text()

# The drawing in docs/architecture.md, left to right: a package imports only from its own layer or
# layers to its left.
LAYERS = [
    {"_core", "redaction", "paths", "forge"},
    {"bus", "runtime", "config", "capabilities", "secrets"},
    {"state", "tasks"},
    {"log"},
    {"mesh"},
    {"hmmm"},
    {"github"},
    {"executor"},
    {"monitor"},
    {"workers", "supervisor", "testing", "cli"},
]
WORKER_CODE_LINES_MAX = 60  # lines of code, not counting the docstring (its TOML example), comments, blanks


def concern(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return "__init__" if parts == ("__init__",) else parts[0]


def imports_between_concerns() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        source = concern(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + ([f"bzzz.{a.name}" for a in node.names] if node.module == "bzzz" else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "bzzz" and len(parts) > 1 and parts[1] != source and parts[1] != "__version__":
                    graph.setdefault(source, set()).add(parts[1])
    return graph


def code_lines(source: str) -> int:
    tree = ast.parse(source)
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) else tree.body
    numbers = {n for node in body for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    lines = source.splitlines()
    return sum(1 for n in numbers if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("#"))


def layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def test_every_package_imports_only_from_its_layer_or_the_ones_below() -> None:
    graph = imports_between_concerns()
    everything = {concern(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert everything <= set().union(*LAYERS), f"not in the drawing: {everything - set().union(*LAYERS)}"
    upward = sorted((a, b) for a, deps in graph.items() if a != "__init__" for b in deps if layer_of(b) > layer_of(a))
    assert upward == [], f"imports against the drawing in docs/architecture.md: {upward}"


def test_no_two_packages_import_each_other_even_through_others() -> None:
    graph = imports_between_concerns()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    assert [(a, b) for a, deps in graph.items() for b in deps if reaches(b, a)] == []


def test_the_check_sees_an_upward_import() -> None:
    # Positive control: the graph holds real edges, one of them against a layer if reversed.
    graph = imports_between_concerns()
    assert "log" in graph["executor"] and layer_of("executor") > layer_of("log")


def test_each_worker_is_a_short_entry_point_with_checked_settings() -> None:
    workers = sorted(p for p in (PACKAGE / "workers").glob("*.py") if p.name != "__init__.py")
    assert workers, "no worker modules found"
    assert (
        code_lines('"""doc"""\n' + "x = 1\n# why\n\n" * (WORKER_CODE_LINES_MAX + 1)) > WORKER_CODE_LINES_MAX
    )  # control
    for path in workers:
        module = f"bzzz.workers.{path.stem}"
        source = path.read_text()
        assert module in BUILT_IN_SETTINGS and settings_model(module) is not None, f"{module}: no settings model"
        assert "argparse" not in source, f"{module} parses argv: its settings come from [workers.NAME.settings]"
        assert code_lines(source) <= WORKER_CODE_LINES_MAX, f"{module} holds logic: move it to its concern"
        assert path.stem in DOC, f"{module} is not in docs/architecture.md"


def test_the_services_the_doc_lists_are_the_services_there_are() -> None:
    defined = set()
    for path in PACKAGE.rglob("*.py"):
        defined |= set(re.findall(r'^SERVICE = "([a-z]+)"$', path.read_text(), re.M))
    listed = set(re.findall(r"^\| `([a-z]+)` +\|", DOC, re.M))
    assert defined == listed, f"in the code: {sorted(defined)}, in docs/architecture.md: {sorted(listed)}"


def test_every_folder_of_the_package_is_in_the_doc() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = [name for name in sorted(folders) if not re.search(rf"^  {name}/ ", DOC, re.M)]
    assert missing == [], f"folders docs/architecture.md does not describe: {missing}"
