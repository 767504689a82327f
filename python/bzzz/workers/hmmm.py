"""The hmmm worker: this agent's part in discussions before work (`bzzz.hmmm`).

    [workers.hmmm]
    module = "bzzz.workers.hmmm"
    args = ["--window", "30", "--ollama", "http://127.0.0.1:11434",
            "--n8n-webhook", "https://n8n.example/webhook/bzzz-escalation"]
    env = { BZZZ_SLACK_WEBHOOK_FILE = "/etc/bzzz/slack-webhook" }

It needs the agent's `mesh` worker (gossip) and `log` worker (the transcript). It serves the
`hmmm` service (`bzzz.hmmm.client`) that the executor asks before it acts, and on its own it
follows its peers' discussions, reviews their plans with its model, answers and relays help
requests, and forwards escalations to the webhooks it is given. Every HMMM message it sends or
receives is journalled to the agent's signed log: durably first (the worker's outbox), then
appended, so nothing is lost if the log worker or this one dies in between.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import structlog
from pydantic import ValidationError

from bzzz._core import EnvelopeRejected, verify_envelope
from bzzz.bus import BusError, Client, Request, Service, Subscriber
from bzzz.hmmm.client import SERVICE, AskHelp, Discuss, Escalate, Finish, GetTranscript, request_decoder
from bzzz.hmmm.engine import Hub, HmmmSettings, Journal
from bzzz.hmmm.escalation import WebhookForwarder
from bzzz.hmmm.messages import HELP_TOPIC, issue_channel
from bzzz.hmmm.thinking import Issue, NoThinker, Thinker, pick_thinker
from bzzz.hmmm.transport import MeshTransport
from bzzz.log import encode_event
from bzzz.log.service import SERVICE as LOG_SERVICE
from bzzz.log.service import LogAppendError, LogClient, append_request
from bzzz.mesh.client import GOSSIP_PREFIX, PEERS_TOPIC, PeerEvent
from bzzz.state import WorkerState
from bzzz.state import outbox
from bzzz.workers import runtime

log = structlog.get_logger("bzzz.workers.hmmm")

T = TypeVar("T")
# "bzzz/meta/" covers every issue channel and the escalation topic.
GOSSIP_TOPICS = (GOSSIP_PREFIX + "bzzz/meta/", GOSSIP_PREFIX + HELP_TOPIC, GOSSIP_PREFIX + "bzzz/capabilities")
THINKER_RETRY_S = 30.0


def parse_args(name: str, argv: list[str] | None = None) -> tuple[argparse.Namespace, HmmmSettings]:
    parser = argparse.ArgumentParser(
        prog=f"bzzz.workers.hmmm ({name})",
        description="Discuss plans with peers before acting: objections, questions, help requests, escalation.",
    )
    parser.add_argument("--settings", help="HmmmSettings as JSON (every field; the flags below override).")
    parser.add_argument("--window", type=float, help="Objection period in seconds after each plan (default 30).")
    parser.add_argument("--gather", type=float, help="Seconds to wait for followers before posting a plan (default 5).")
    parser.add_argument("--ttl", type=float, help="Longest discussion in seconds (default 3600, or the mesh's, if shorter).")
    parser.add_argument("--no-follow", action="store_true", help="Do not join peers' discussions.")
    parser.add_argument("--no-review", action="store_true", help="Follow, but do not review peers' plans.")
    parser.add_argument("--no-relay", action="store_true", help="Do not relay help requests to peers that join.")
    parser.add_argument("--ollama", action="append", default=[], help="Ollama endpoint for reviews and answers; repeat.")
    parser.add_argument("--model", help="The model to think with (default: the first installed).")
    parser.add_argument("--model-timeout", type=float, default=120.0, help="Seconds one model answer may take.")
    parser.add_argument("--n8n-webhook", help="Forward escalations to this N8N webhook URL.")
    parser.add_argument("--slack-webhook", help="Forward escalations to this Slack incoming-webhook URL "
                                                "(better: BZZZ_SLACK_WEBHOOK_FILE, a file holding it).")
    args = parser.parse_args(argv)
    raw: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    for flag, field in (("window", "window_s"), ("gather", "gather_s"), ("ttl", "ttl_s")):
        if getattr(args, flag) is not None:
            raw[field] = getattr(args, flag)
    for flag, field in (("no_follow", "follow"), ("no_review", "review"), ("no_relay", "relay")):
        if getattr(args, flag):
            raw[field] = False
    if args.slack_webhook is None and os.environ.get("BZZZ_SLACK_WEBHOOK_FILE"):
        try:
            args.slack_webhook = Path(os.environ["BZZZ_SLACK_WEBHOOK_FILE"]).read_text().strip()
        except OSError as err:
            parser.error(f"BZZZ_SLACK_WEBHOOK_FILE: {err}")
    for url in (args.n8n_webhook, args.slack_webhook):
        if url is not None and not url.startswith(("http://", "https://")):
            parser.error(f"a webhook must be an http(s) URL, got {url!r}")
    try:
        return args, HmmmSettings.model_validate(raw)
    except ValidationError as err:
        parser.error(str(err))


class DurableJournal:
    """Log entries: into this worker's outbox first, then appended at once if the log answers."""

    def __init__(self, rt: runtime.WorkerRuntime, state: WorkerState, agent: str) -> None:
        self.rt, self.state, self.agent = rt, state, agent
        self.client = LogClient(rt.run_dir, sender=rt.name, timeout_s=1.0, retries=0)

    def __call__(self, kind: str, fields: dict[str, Any]) -> int | None:
        entry = encode_event(kind, agent=self.agent, node_id=self.rt.node_id, **fields)
        key = f"{kind}:{os.urandom(8).hex()}"
        item = self.state.put(LOG_SERVICE, append_request([entry]), key=key)
        try:
            result = self.client.append(entry, request_id=f"{self.rt.name}/{key}")
        except (BusError, LogAppendError) as err:
            log.info("log not answering; the entry waits in the outbox", kind=kind, error=str(err)[:200])
            return None
        self.state.ack(item)
        return result.first_index

    def close(self) -> None:
        self.client.close()


def while_heartbeating(rt: runtime.WorkerRuntime, pool: ThreadPoolExecutor, job: Callable[[], T],
                       chores: Callable[[], None]) -> T:
    future: Future[T] = pool.submit(job)
    while True:
        rt.heartbeat()
        chores()
        try:
            return future.result(timeout=rt.interval / 2)
        except TimeoutError:
            continue


def handle(hub: Hub, request: Any, stop: threading.Event) -> dict[str, Any]:
    match request:
        case Discuss(repo=repo, number=number, title=title, body=body, plan=plan, window_s=window_s):
            verdict = hub.discuss(Issue(repo, number, title, body), plan, window_s=window_s, stop=stop)
            return verdict.as_dict()
        case AskHelp(task_id=task_id, problem=problem, tried=tried, needs=needs, window_s=window_s):
            request_id, answers = hub.ask_help(task_id, problem, tried, needs, window_s=window_s, stop=stop)
            return {"request_id": request_id, "answers": [
                {"node_id": a.node_id, "text": a.text, "msg_id": a.msg_id, "hop_count": a.hop_count} for a in answers]}
        case Escalate(repo=repo, number=number, reason=reason, summary=summary, messages=messages):
            return {"msg_id": hub.escalate(repo, number, reason, summary, messages)}
        case GetTranscript(repo=repo, number=number):
            transcript = hub.transcript(repo, number)
            return {"channel": issue_channel(repo, number), "first": transcript.first, "last": transcript.last,
                    "entries": transcript.entries}
        case Finish(repo=repo, number=number):
            hub.finish(repo, number)
    return {}


def listen(rt: runtime.WorkerRuntime, hub: Hub, ready: threading.Event) -> None:
    """The inbound side: admitted gossip and peer changes from the mesh worker, until stopping."""
    with Subscriber(rt.run_dir, [*GOSSIP_TOPICS, PEERS_TOPIC]) as subscriber:
        ready.set()
        while not rt.stopping.is_set():
            got = subscriber.recv(0.2)
            if got is None:
                continue
            topic, message = got
            try:
                if topic == PEERS_TOPIC:
                    if msgspec.json.decode(message.body, type=PeerEvent).kind == "joined":
                        hub.peer_joined()
                    continue
                hub.receive(verify_envelope(message.body), message.body)
            except EnvelopeRejected as err:
                log.info("gossip expired on the way from the mesh worker", reason=err.reason)
            except Exception:
                log.exception("could not handle a message", topic=topic)


def main(rt: runtime.WorkerRuntime) -> int:
    args, settings = parse_args(rt.name)
    transport = MeshTransport(rt.run_dir, timeout_s=5.0)
    caps: dict[str, Any] = {"at": float("-inf"), "names": frozenset()}

    def capabilities() -> frozenset[str]:
        if time.monotonic() - caps["at"] > 10.0:
            try:
                caps["names"], caps["at"] = transport.own_capabilities(), time.monotonic()
            except BusError as err:
                log.info("could not read this agent's capabilities", error=str(err)[:200])
        return frozenset(caps["names"])

    def think() -> Thinker:
        return pick_thinker(args.ollama, args.model, timeout_s=args.model_timeout) if args.ollama else NoThinker()

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hmmm-request")
    stop_request = threading.Event()
    with WorkerState.for_worker(rt.data_dir, rt.name) as state:
        journal = DurableJournal(rt, state, agent=rt.node_id or rt.name)
        forwarder = WebhookForwarder(state, node_id=rt.node_id or rt.name, n8n_url=args.n8n_webhook,
                                     slack_url=args.slack_webhook)
        thinker = think()
        hub = Hub(rt.node_id or rt.name, transport, Journal(journal), thinker, settings, capabilities=capabilities,
                  forwarder=forwarder, ttl_limit=transport.discussion_ttl)
        try:
            transport.announce(settings.follow, [])
        except BusError as err:
            log.info("mesh not up yet; will announce with the first discussion", error=str(err)[:200])
        ready = threading.Event()
        listener = threading.Thread(target=listen, args=(rt, hub, ready), daemon=True, name="hmmm-listen")
        listener.start()
        ready.wait(5.0)
        log_client = Client(rt.run_dir, sender=rt.name, timeout_s=0.5, retries=0)
        next_think = time.monotonic() + THINKER_RETRY_S
        last_chores = 0.0

        def chores() -> None:
            nonlocal next_think, last_chores
            now = time.monotonic()
            if now - last_chores < 0.5:
                return
            last_chores = now
            hub.tick()
            if forwarder.configured:
                forwarder.deliver()
            outbox.deliver(state, log_client, topic=LOG_SERVICE, limit=50)
            if args.ollama and isinstance(hub.thinker, NoThinker) and now >= next_think:
                next_think = now + THINKER_RETRY_S
                hub.thinker = hub.help.thinker = think()

        def handler(request: Request) -> bytes:
            try:
                decoded = request_decoder.decode(request.body)
            except msgspec.ValidationError as err:
                raise ValueError(f"not an hmmm request: {err}") from None
            reply = while_heartbeating(rt, pool, lambda: handle(hub, decoded, stop_request), chores)
            return msgspec.json.encode(reply)

        log.info("discussing", window_s=settings.window_s, follow=settings.follow,
                 model=getattr(hub.thinker, "model", None), webhooks=sorted(forwarder.urls), pid=os.getpid())
        try:
            with Service(rt.run_dir, SERVICE, handler) as service:
                rt.heartbeat()  # ready
                while not rt.stopping.is_set():
                    service.serve_one(rt.interval / 2)
                    rt.heartbeat()
                    chores()
        finally:
            stop_request.set()
            hub.close()
            pool.shutdown(wait=False, cancel_futures=True)
            listener.join(2.0)
            forwarder.close()
            journal.close()
            log_client.close()
            transport.close()
    return 0


if __name__ == "__main__":
    runtime.run(main)
