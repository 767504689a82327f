"""The escalation workflow in docs/n8n, run by a real n8n (`make test-n8n`): an agent's
escalation, forwarded by the agent's own webhook code, becomes one Slack message, and the same
escalation forwarded again (by a second agent, or after a crash before the ack) is dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bzzz.hmmm.escalation import Escalation, WebhookForwarder
from bzzz.state import WorkerState
from tests.agents import wait_until
from tests.hmmm.test_discussions import Webhooks
from tests.n8n import NOT_BUILT, binary, run

pytestmark = pytest.mark.skipif(binary() is None, reason=NOT_BUILT)

WORKFLOW = Path(__file__).parents[2] / "docs" / "n8n" / "escalation-workflow.json"
WORKFLOW_ID = "bzzzEscalation01"  # an export carries its id; n8n's are 16 characters
HOOK = "bzzz-escalation"
SLACK = "/services/T000/B000/slack"
WAIT_S = 180  # n8n runs each execution (and its Code node's task runner) on a loaded machine


def escalation(msg_id: str, reason: str) -> Escalation:
    return Escalation(
        msg_id,
        "walnut",
        "acme/widgets#12",
        reason,
        "oak asks: <b>compatible</b> with 1.x?",
        ["cd" * 16],
        1_764_460_000_000,
    )


def forward(agent: str, state: Path, url: str, *escalations: Escalation) -> None:
    """What an agent configured with `n8n_webhook = url` does with escalations it sees."""
    forwarder = WebhookForwarder(WorkerState(state), node_id=agent, n8n_url=url, timeout_s=60)
    try:
        for one in escalations:
            forwarder.accept(one)
        assert forwarder.deliver() == (len(escalations), 0)
    finally:
        forwarder.close()


@pytest.fixture
def slack() -> Iterator[Webhooks]:
    server = Webhooks()
    yield server
    server.server.shutdown()


def test_real_n8n_posts_one_slack_message_per_escalation_and_drops_a_repeat(tmp_path: Path, slack: Webhooks) -> None:
    n8n = binary()
    assert n8n is not None
    # The shipped workflow as it is; Slack's URL comes from the environment, as in production.
    workflow: dict[str, Any] = {**json.loads(WORKFLOW.read_text()), "id": WORKFLOW_ID}
    first = escalation("ab" * 16, "a question needs a human")
    second = escalation("ef" * 16, "the task failed after 3 help round(s)")
    env = {
        "BZZZ_SLACK_WEBHOOK_URL": slack.url + SLACK,
        # The workflow reads that with $env, which n8n says it will block by default one day.
        "N8N_BLOCK_ENV_ACCESS_IN_NODE": "false",
    }
    with run(n8n, tmp_path / "n8n", workflow, webhook=HOOK, env=env) as server:
        url = server.webhook(HOOK)

        def finished(count: int) -> bool:
            return server.executions(WORKFLOW_ID).get("success", 0) >= count

        forward("oak", tmp_path / "oak.sqlite", url, first)
        wait_until(lambda: slack.to(SLACK), WAIT_S, "the first Slack message")
        wait_until(lambda: finished(1), WAIT_S, "n8n to finish the first execution")
        assert server.static_data(WORKFLOW_ID) == {"global": {"seen": [first.msg_id]}}  # kept across executions

        # A second agent saw the same escalation on the mesh and forwards it too.
        forward("pine", tmp_path / "pine.sqlite", url, first)
        wait_until(lambda: finished(2), WAIT_S, "n8n to finish the repeat's execution")
        assert len(slack.to(SLACK)) == 1, "the repeat reached Slack"

        # Positive control: a different escalation does go through the same workflow.
        forward("oak", tmp_path / "oak.sqlite", url, second)
        wait_until(lambda: len(slack.to(SLACK)) >= 2, WAIT_S, "the second Slack message")
        wait_until(lambda: finished(3), WAIT_S, "n8n to finish the third execution")
        assert server.executions(WORKFLOW_ID) == {"success": 3}, server.output()[-2000:]

    messages = [body for _, body in slack.to(SLACK)]
    assert [m["text"] for m in messages] == [
        "Bzzz needs a human on acme/widgets#12: a question needs a human",
        "Bzzz needs a human on acme/widgets#12: the task failed after 3 help round(s)",
    ]
    assert "&lt;b&gt;compatible&lt;/b&gt;" in messages[0]["blocks"][0]["text"]["text"]
    assert f"message {first.msg_id} · forwarded by oak" in messages[0]["blocks"][1]["elements"][0]["text"]
