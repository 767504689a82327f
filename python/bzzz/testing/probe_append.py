"""The probe worker's `--append N`: entries to the agent's log through the log service and a durable outbox."""

from __future__ import annotations

import time

from bzzz import runtime
from bzzz.bus import Client
from bzzz.log import encode_event
from bzzz.log.service import SERVICE, append_request
from bzzz.state import WorkerState, outbox


class Appender:
    """Puts entry k (0 <= k < total) into the outbox when it is due, and delivers the outbox.

    Entry k's outbox key is `append-k`: after a restart the entries already put are not put
    again, and the delivered ones are not sent again. One sent again because a kill came
    between its reply and its ack carries the same request id, and the log service answers
    it without appending."""

    def __init__(self, rt: runtime.WorkerRuntime, total: int, every_s: float) -> None:
        self.rt, self.total, self.every_s = rt, total, every_s
        self.state: WorkerState = WorkerState.for_worker(rt.data_dir, rt.name)
        self.client = Client(rt.run_dir, sender=rt.name, timeout_s=0.5, retries=0)
        counts = self.state.counts()
        self.next_k = counts["pending"] + counts["delivered"]  # the outbox holds nothing but these
        self.next_at = time.monotonic()
        self.reported = False

    def step(self) -> float:
        """Do a little; how long until there is more to do."""
        now = time.monotonic()
        if self.next_k < self.total and now >= self.next_at:
            entry = encode_event("probe_append", worker=self.rt.name, k=self.next_k)
            self.state.put(SERVICE, append_request([entry]), key=f"append-{self.next_k}")
            self.next_k += 1
            self.next_at = now + self.every_s
        delivered, failed = outbox.deliver(self.state, self.client, limit=10)
        if self.next_k == self.total and not self.state.counts()["pending"] and not self.reported:
            print(f"every entry appended: {self.total}", flush=True)
            self.reported = True
        if self.next_k < self.total and not failed:
            return max(0.0, self.next_at - time.monotonic())
        return 0.05

    def close(self) -> None:
        self.client.close()
        self.state.close()
