"""The HMMM wire: channel names, and the payloads of `meta_msg`, help and escalation envelopes.

The envelope (`bzzz._core`) carries `type`, `node_id`, `msg_id` and `hop_count` and signs them;
the payload carries the rest of a `meta_msg`: `issue_id`, `parent_id` and
`content {query_type, text, parameters}`. The core checks these shapes on arrival; this module
builds them, and reads an admitted envelope back as a `Message`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from bzzz._core import Envelope

CHANNEL_PREFIX = "bzzz/meta/issue/"
HELP_TOPIC = "bzzz/tasks/help"
ESCALATION_TOPIC = "bzzz/meta/escalation"

TEXT_KEPT = 4000  # characters of a message's text kept in the log entry

QueryType = Literal["plan", "objection", "question", "answer", "suggestion", "correction", "ack", "help"]


def issue_channel(repo: str, number: int) -> str:
    """`bzzz/meta/issue/{owner}/{repo}/{number}`: one issue's discussion."""
    return f"{CHANNEL_PREFIX}{repo}/{number}"


def issue_id(repo: str, number: int) -> str:
    return f"{repo}#{number}"


def is_issue_channel(topic: str) -> bool:
    return topic.startswith(CHANNEL_PREFIX)


def new_request_id() -> str:
    return os.urandom(16).hex()


def meta_payload(
    issue: str,
    query_type: QueryType,
    text: str,
    *,
    parent_id: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "issue_id": issue,
        "parent_id": parent_id,
        "content": {"query_type": query_type, "text": text, "parameters": parameters or {}},
    }


def help_request_payload(
    request_id: str, task_id: str, problem: str, tried: list[str], needs: list[str]
) -> dict[str, Any]:
    return {"request_id": request_id, "task_id": task_id, "problem": problem, "tried": tried, "needs": needs}


def help_response_payload(request_id: str, task_id: str, can_help: bool, text: str) -> dict[str, Any]:
    return {"request_id": request_id, "task_id": task_id, "can_help": can_help, "text": text}


def escalation_payload(issue: str, reason: str, summary: str, messages: list[str]) -> dict[str, Any]:
    return {"issue_id": issue, "reason": reason, "summary": summary, "messages": messages[:256]}


@dataclass(frozen=True)
class Message:
    """An admitted `meta_msg`, as the discussion logic reads it."""

    msg_id: str
    node_id: str
    channel: str
    issue_id: str
    parent_id: str | None
    query_type: str
    text: str
    parameters: dict[str, Any] = field(default_factory=dict)
    ts_ms: int = 0

    @classmethod
    def from_envelope(cls, envelope: Envelope) -> Message:
        payload = envelope.payload
        content = payload["content"]
        return cls(
            msg_id=envelope.msg_id,
            node_id=envelope.node_id,
            channel=envelope.topic,
            issue_id=payload["issue_id"],
            parent_id=payload["parent_id"],
            query_type=content["query_type"],
            text=content["text"],
            parameters=dict(content["parameters"]),
            ts_ms=envelope.ts_ms,
        )


def journal_fields(envelope: Envelope, direction: Literal["sent", "received"]) -> dict[str, Any]:
    """What the agent's log keeps of an HMMM message: enough to read the discussion back, and to
    find the signed original by msg_id in the sender's own log."""
    payload = envelope.payload
    fields: dict[str, Any] = {
        "direction": direction,
        "message_type": envelope.type,
        "topic": envelope.topic,
        "msg_id": envelope.msg_id,
        "from_node": envelope.node_id,
        "hop_count": envelope.hop_count,
        "sent_ts": envelope.ts_ms,
    }
    if envelope.type == "meta_msg":
        content = payload["content"]
        fields.update(
            issue_id=payload["issue_id"],
            parent_id=payload["parent_id"],
            query_type=content["query_type"],
            text=content["text"][:TEXT_KEPT],
            parameters=content["parameters"],
        )
    else:
        fields["payload"] = {k: (v[:TEXT_KEPT] if isinstance(v, str) else v) for k, v in payload.items()}
    return fields
