"""The known-answer vectors `cargo test` relies on are still what npm hypercore makes."""

import json

import pytest

from tests.interop import js_hypercore as js

if js.node_path() is None:
    pytest.skip("`node` is not on PATH", allow_module_level=True)

pytestmark = pytest.mark.interop


def test_the_committed_vectors_are_what_hypercore_11_makes_today() -> None:
    js.check_installed()
    from tests.vectors import generate

    committed = json.loads(generate.OUT.read_text())
    assert committed["cases"] == generate.cases(), "regenerate with: .venv/bin/python -m tests.vectors.generate"
