"""A worker for the crash tests, run as a real process and killed with SIGKILL by the tests.

It works through a deterministic stream of messages the way a worker should: the accept commits
with its read position in the stream (so an upstream would be acked only then), and each
message's effect (a row in its own `effects` table), its outbox entry and its finish commit in
one transaction. After a restart it first resumes `unfinished()`, then reads the stream again
from a little before where it stopped (`--rewind`): those are redeliveries, which must be
recognised (`accept` is False) and answered with the recorded result, enqueued again under
the same key (one outbox entry still).

    python -m tests.state.crash_child STATE_FILE COUNT [--rewind R] [--work-us U] [--crash-at POINT:I]

`--crash-at` kills the process itself (SIGKILL) at one point of message I: after the accept
commits (`accepted`), inside the transaction after the effect (`effect`) or just before its
commit (`finishing`), or after the commit (`finished`).

Prints `resumed K` once, `accepted I` for each newly accepted message, `done` at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
from pathlib import Path

from bzzz.state import WorkerState

TOPIC = "test/effects"
POINTS = ("accepted", "effect", "finishing", "finished")


def message(i: int) -> tuple[str, bytes]:
    """The i-th message of the stream: always the same id and payload."""
    return f"m{i:06d}", f"payload {i} ".encode() * (1 + i % 7)


def work(payload: bytes) -> bytes:
    """The work's result, which the tests recompute to check each effect."""
    return hashlib.sha256(payload).digest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("state", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--rewind", type=int, default=20)
    parser.add_argument("--work-us", type=int, default=0)
    parser.add_argument("--crash-at", default="")
    args = parser.parse_args()
    crash_point, _, crash_index = args.crash_at.partition(":")
    crash_at = (crash_point, int(crash_index)) if crash_point else None

    def maybe_crash(point: str, i: int) -> None:
        if crash_at == (point, i):
            os.kill(os.getpid(), signal.SIGKILL)

    state = WorkerState(args.state)
    with state.transaction() as db:
        # No UNIQUE on msg_id: an effect done twice must show as two rows.
        db.execute("CREATE TABLE IF NOT EXISTS effects (msg_id TEXT NOT NULL, digest BLOB NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS cursor (one INTEGER PRIMARY KEY CHECK (one = 1), next INTEGER)")
        db.execute("INSERT OR IGNORE INTO cursor VALUES (1, 0)")

    def handle(msg_id: str, payload: bytes) -> None:
        i = int(msg_id[1:])
        result = work(payload)
        if args.work_us:  # the work takes time: kills land inside it too
            until = time.perf_counter() + args.work_us / 1e6
            while time.perf_counter() < until:
                pass
        with state.transaction() as db:
            db.execute("INSERT INTO effects VALUES (?, ?)", (msg_id, result))
            maybe_crash("effect", i)
            state.put(TOPIC, result, key=msg_id)
            state.finish(msg_id, result)
            maybe_crash("finishing", i)
        maybe_crash("finished", i)

    resumed = state.unfinished()
    print(f"resumed {len(resumed)}", flush=True)
    for item in resumed:
        handle(item.msg_id, item.payload)

    with state.transaction() as db:
        position = int(db.execute("SELECT next FROM cursor").fetchone()[0])
    for i in range(max(0, position - args.rewind), args.count):
        msg_id, payload = message(i)
        with state.transaction() as db:
            fresh = state.accept(msg_id, payload)
            db.execute("UPDATE cursor SET next = max(next, ?)", (i + 1,))
        maybe_crash("accepted", i)
        if not fresh:  # a redelivery: done already (unfinished ones were resumed above)
            result = state.result_of(msg_id)
            assert result is not None, f"{msg_id} redelivered but neither finished nor resumed"
            state.put(TOPIC, result, key=msg_id)
            continue
        print(f"accepted {i}", flush=True)
        handle(msg_id, payload)
    state.close()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
