"""Escalations to people: `bzzz/meta/escalation` messages, forwarded to an N8N and/or Slack webhook.

An agent configured with a webhook URL forwards every escalation it sees (its own, and its peers'
from the mesh). Each escalation is queued in the worker's durable outbox under its `msg_id`
before anything is sent, so a replayed message, the same escalation arriving over two paths, or a
restart in the middle adds nothing: each webhook is called once per escalation, and again only
if it did not answer 2xx (then with exponential backoff, until it does). Every call carries the
`msg_id` in the header `X-Bzzz-Msg-Id`, so a receiver can drop the repeat that at-least-once
delivery allows when the agent dies between the webhook's 2xx and the outbox's ack.

The JSON bodies are documented in README.md ("Escalation webhooks"); `docs/n8n/escalation-workflow.json`
is an N8N workflow that receives them and posts to Slack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import structlog

from bzzz._core import Envelope
from bzzz.hmmm.messages import CHANNEL_PREFIX
from bzzz.state import WorkerState

log = structlog.get_logger("bzzz.hmmm.escalation")

N8N = "webhook/n8n"
SLACK = "webhook/slack"


@dataclass(frozen=True)
class Escalation:
    msg_id: str
    node_id: str
    issue_id: str
    reason: str
    summary: str
    messages: list[str]
    ts_ms: int

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Escalation:
        payload = envelope.payload
        return cls(
            envelope.msg_id,
            envelope.node_id,
            payload["issue_id"],
            payload["reason"],
            payload["summary"],
            list(payload["messages"]),
            envelope.ts_ms,
        )

    def n8n_body(self, forwarded_by: str) -> dict[str, Any]:
        repo, _, number = self.issue_id.rpartition("#")
        return {
            "source": "bzzz",
            "kind": "escalation",
            **asdict(self),
            "repo": repo or None,
            "number": int(number) if number.isdigit() else None,
            "channel": f"{CHANNEL_PREFIX}{repo}/{number}" if repo and number.isdigit() else None,
            "forwarded_by": forwarded_by,
        }

    def slack_body(self) -> dict[str, Any]:
        headline = f"Bzzz needs a human on {self.issue_id}: {self.reason}"
        return {
            "text": headline,  # what notifications show
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{_slack(headline)}*\n{_slack(self.summary)}"},
                },
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": _slack(
                                f"agent {self.node_id} · message {self.msg_id} · "
                                f"{len(self.messages)} message(s) in the discussion"
                            ),
                        }
                    ],
                },
            ],
        }


def _slack(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters; everything else is literal.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")[:2900]


class WebhookForwarder:
    def __init__(
        self,
        state: WorkerState,
        *,
        node_id: str,
        n8n_url: str | None = None,
        slack_url: str | None = None,
        timeout_s: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.state = state
        self.node_id = node_id
        self.urls = {target: url for target, url in ((N8N, n8n_url), (SLACK, slack_url)) if url}
        self._client = client or httpx.Client(timeout=timeout_s)

    @property
    def configured(self) -> bool:
        return bool(self.urls)

    def accept(self, escalation: Escalation) -> None:
        """Queue `escalation` for each configured webhook, once per msg_id (durably, before returning)."""
        for target in self.urls:
            body = escalation.n8n_body(self.node_id) if target == N8N else escalation.slack_body()
            self.state.put(
                target,
                json.dumps({"msg_id": escalation.msg_id, "body": body}).encode(),
                key=f"{target}:{escalation.msg_id}",
            )

    def deliver(self, limit: int = 20) -> tuple[int, int]:
        """Send what is due; returns (delivered, failed)."""
        delivered = failed = 0
        for target, url in self.urls.items():
            for item in self.state.pending(limit, topic=target):
                queued = json.loads(item.payload)
                try:
                    response = self._client.post(url, json=queued["body"], headers={"X-Bzzz-Msg-Id": queued["msg_id"]})
                    ok = 200 <= response.status_code < 300
                    problem = f"HTTP {response.status_code}"
                except httpx.HTTPError as err:
                    ok, problem = False, f"{type(err).__name__}: {err}"
                if ok:
                    self.state.ack(item.id)
                    delivered += 1
                    log.info("escalation forwarded", target=target, msg_id=queued["msg_id"])
                else:
                    delay = self.state.nack(item.id)
                    failed += 1
                    log.warning(
                        "webhook failed; will retry",
                        target=target,
                        msg_id=queued["msg_id"],
                        problem=problem,
                        retry_in_s=delay,
                    )
        return delivered, failed

    def close(self) -> None:
        self._client.close()
