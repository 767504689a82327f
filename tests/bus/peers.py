"""Worker-like processes for the bus tests, run as `python tests/bus/peers.py ROLE ...`.

Each prints "ready" on stdout once its sockets are set up, then JSON lines of what it did.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from bzzz.bus import BusProxy, Publisher, Request, Service, Subscriber

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for JSON


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class JsonStore:
    """A durable reply cache and the effects of the handler, in one JSON file.

    `commit` writes the effect and the reply together with one atomic rename, as a
    SQLite transaction would: after a kill -9 either both are there or neither.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh: dict[str, Any] = {"effects": [], "replies": {}, "dies_unanswered": {}}
        self.state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else fresh

    def seen(self, request_id: str) -> bytes | None:
        reply = self.state["replies"].get(request_id)
        return None if reply is None else bytes.fromhex(reply)

    def remember(self, request_id: str, reply: bytes) -> None:
        assert self.seen(request_id) == reply, "the handler commits its reply with its effect"

    def commit(self, request_id: str, effect: str, reply: bytes, *, then_die: bool = False) -> None:
        self.state["effects"].append(effect)
        self.state["replies"][request_id] = reply.hex()
        if then_die:
            # In the same write as the effect, not after it: a kill -9 from outside can land
            # between the commit and the planned one, and the process dies unanswered either way.
            self.state["dies_unanswered"][effect] = os.getpid()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.path)


def serve(args: argparse.Namespace) -> None:
    crash_after = {int(n) for n in args.crash_after.split(",") if n}
    if crash_after and not args.store:
        sys.exit("--crash-after needs --store: the store is where a planned crash is recorded")
    handled_log = open(args.handled_log, "a") if args.handled_log else None
    store = JsonStore(Path(args.store)) if args.store else None

    def handler(request: Request) -> bytes:
        if handled_log is not None:
            handled_log.write(request.request_id + "\n")
            handled_log.flush()
        reply = b"done:" + request.body + b" by " + args.answer.encode()
        crash = request.body.isdigit() and int(request.body) in crash_after
        if store is not None:
            store.commit(request.request_id, request.body.decode(), reply, then_die=crash)
        if crash:
            os.kill(os.getpid(), signal.SIGKILL)  # the work is done, the reply never leaves
        return reply

    with Service(args.run_dir, args.name, handler, replies=store) as service:
        say(ready=True, pid=os.getpid())
        while True:
            service.serve_one(1.0)


def publish(args: argparse.Namespace) -> None:
    with Publisher(args.run_dir, args.sender) as publisher:
        for topic in args.wait_for:
            assert publisher.wait_for_subscriber(topic, 10.0), f"nobody subscribed to {topic}"
        say(ready=True)
        for i in range(args.count):
            for topic in args.topics:
                assert publisher.publish(topic, f"{topic} {i}".encode(), timeout_s=5.0)
        say(published=publisher.published, dropped=publisher.dropped)


def subscribe(args: argparse.Namespace) -> None:
    with Subscriber(args.run_dir, [*args.topics, args.hello]) as subscriber:
        say(ready=True)
        got = []
        while len(got) < args.count:
            item = subscriber.recv(10.0)
            if item is None:
                break
            topic, message = item
            if topic != args.hello:
                got.append([topic, message.body.decode(), message.sender])
        say(got=got, missed=subscriber.missed)


def proxy(args: argparse.Namespace) -> None:
    BusProxy(args.run_dir).start()
    say(ready=True, pid=os.getpid())
    while True:
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    roles = parser.add_subparsers(dest="role", required=True)
    s = roles.add_parser("serve")
    s.add_argument("run_dir")
    s.add_argument("name")
    s.add_argument("--answer", default="")
    s.add_argument("--store", default="")
    s.add_argument("--handled-log", default="")
    s.add_argument("--crash-after", default="", help="die by kill -9 right after committing these bodies")
    s.set_defaults(run=serve)
    p = roles.add_parser("publish")
    p.add_argument("run_dir")
    p.add_argument("sender")
    p.add_argument("count", type=int)
    p.add_argument("topics", nargs="+")
    p.add_argument("--wait-for", nargs="*", default=[])
    p.set_defaults(run=publish)
    u = roles.add_parser("subscribe")
    u.add_argument("run_dir")
    u.add_argument("count", type=int)
    u.add_argument("topics", nargs="+")
    u.add_argument("--hello", required=True, help="a topic of its own, so a publisher can wait for it")
    u.set_defaults(run=subscribe)
    x = roles.add_parser("proxy")
    x.add_argument("run_dir")
    x.set_defaults(run=proxy)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
