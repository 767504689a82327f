"""Delivering a worker's outbox to the services of its agent, at least once.

An outbox message's `topic` names the service it is for and its `payload` is the request
body. Each is sent with a request id that stays the same across this worker's restarts
(`<worker>/<key>`, or `<worker>/#<id>` without a key), so the service's own deduplication
turns at-least-once delivery into exactly-once effects. A message is acked once the service
answered it; one the service did not answer, or answered with an error, is nacked and waits
out an exponential backoff (`WorkerState.nack`) while later messages go ahead.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from bzzz.bus import BusError, Client
from bzzz.state import OutboxItem, WorkerState

log = structlog.get_logger("bzzz.state.outbox")


def request_id(sender: str, item: OutboxItem) -> str:
    return f"{sender}/{item.key}" if item.key is not None else f"{sender}/#{item.id}"


def deliver(
    state: WorkerState,
    client: Client,
    *,
    limit: int = 100,
    topic: str | None = None,
    on_reply: Callable[[OutboxItem, bytes], None] | None = None,
    max_failures: int | None = None,
) -> tuple[int, int]:
    """Send up to `limit` due messages (of `topic` only, if given); returns (delivered, failed).

    Past `max_failures` failures it stops: a service that did not answer one message will not
    answer the next either, and each try costs the client's whole timeout."""
    delivered = failed = 0
    for item in state.pending(limit, topic=topic):
        try:
            reply = client.request(item.topic, item.payload, request_id=request_id(client.sender, item))
        except BusError as error:  # unanswered (RequestTimeout) or refused (ServiceError)
            delay = state.nack(item.id)
            failed += 1
            log.warning(
                "delivery failed; will retry", service=item.topic, id=item.id, error=str(error), retry_in_s=delay
            )
            if max_failures is not None and failed >= max_failures:
                break
            continue
        if on_reply is not None:
            on_reply(item, reply)
        state.ack(item.id)
        delivered += 1
    return delivered, failed


__all__ = ["deliver", "request_id"]
