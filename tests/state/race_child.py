"""A process that races others for the same messages on one state file (tests/state/test_concurrency.py).

    python -m tests.state.race_child STATE_FILE NAME COUNT GO_FILE

Says it is ready (creates GO_FILE.NAME), waits for GO_FILE to exist (so that the racers start
together), opens the state file (new, perhaps: they race to create it too), then for i in 0..COUNT-1 accepts
`shared-i` (which every racer tries) and `NAME-i` (its own), and for each one it wins records
the effect under its NAME, enqueues a message and finishes it, in one transaction.
Prints how many shared messages it won.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bzzz.state import WorkerState


def main() -> int:
    path, name, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    go.with_name(f"{go.name}.{name}").touch()
    while not go.exists():
        time.sleep(0.0005)
    state = WorkerState(path, busy_timeout_s=10)
    with state.transaction() as db:
        db.execute("CREATE TABLE IF NOT EXISTS effects (msg_id TEXT NOT NULL, by TEXT NOT NULL)")
    won = 0
    for i in range(count):
        for msg_id in (f"shared-{i}", f"{name}-{i}"):
            if not state.accept(msg_id, msg_id.encode()):
                continue
            won += msg_id.startswith("shared")
            with state.transaction() as db:
                db.execute("INSERT INTO effects VALUES (?, ?)", (msg_id, name))
                state.put("race", msg_id.encode(), key=msg_id)
                state.finish(msg_id, name.encode())
    state.close()
    print(won)
    return 0


if __name__ == "__main__":
    sys.exit(main())
