"""The example N8N workflow that ships in docs/n8n: it is wired webhook → code → Slack, and its
code, run under Node.js as N8N runs it, turns an agent's escalation into one Slack message and
drops a repeat."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bzzz.hmmm.escalation import Escalation

WORKFLOW = Path(__file__).parents[2] / "docs" / "n8n" / "escalation-workflow.json"
# N8N runs a Code node's JavaScript as the body of an async function with these in scope.
HARNESS = """
const items = JSON.parse(process.argv[1]);
const staticData = {};
globalThis.$getWorkflowStaticData = () => staticData;
const run = new Function('$input', '$getWorkflowStaticData', CODE);
const out = [];
for (const batch of items) out.push(run({ all: () => batch.map((json) => ({ json })) }, globalThis.$getWorkflowStaticData));
console.log(JSON.stringify(out));
"""


def workflow() -> dict[str, Any]:
    return dict(json.loads(WORKFLOW.read_text()))


def test_the_workflow_runs_from_the_webhook_through_the_code_to_slack() -> None:
    nodes = {n["name"]: n for n in workflow()["nodes"]}
    types = [n["type"] for n in nodes.values()]
    assert types == ["n8n-nodes-base.webhook", "n8n-nodes-base.code", "n8n-nodes-base.httpRequest"]
    hook = nodes["Bzzz escalation"]["parameters"]
    assert hook["httpMethod"] == "POST" and hook["path"] == "bzzz-escalation"
    chain = workflow()["connections"]
    step, seen = "Bzzz escalation", []
    while step in chain:
        step = chain[step]["main"][0][0]["node"]
        seen.append(nodes[step]["type"])
    assert seen == types[1:]
    assert "BZZZ_SLACK_WEBHOOK_URL" in nodes["Post to Slack"]["parameters"]["url"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_its_code_makes_one_slack_message_per_escalation_and_drops_repeats() -> None:
    code = next(n for n in workflow()["nodes"] if n["type"] == "n8n-nodes-base.code")["parameters"]["jsCode"]
    first = Escalation(
        "ab" * 16,
        "walnut",
        "acme/widgets#12",
        "a question needs a human",
        "oak asks: <b>compatible</b> with 1.x?",
        ["cd" * 16],
        1_764_460_000_000,
    ).n8n_body("oak")
    second = {**first, "msg_id": "ef" * 16, "reason": "the task failed after 3 help round(s)"}
    batches = [[{"body": first, "headers": {}}], [{"body": first}], [{"body": second}, {"body": {"kind": "other"}}]]
    harness = HARNESS.replace("CODE", json.dumps(code))
    ran = subprocess.run(["node", "-e", harness, json.dumps(batches)], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert [len(batch) for batch in out] == [1, 0, 1]  # the repeat is dropped, the stranger ignored
    message = out[0][0]["json"]
    assert message["text"] == "Bzzz needs a human on acme/widgets#12: a question needs a human"
    assert "&lt;b&gt;compatible&lt;/b&gt;" in message["blocks"][0]["text"]["text"]
    assert "forwarded by oak" in message["blocks"][1]["elements"][0]["text"]
    assert out[2][0]["json"]["text"].endswith("the task failed after 3 help round(s)")
