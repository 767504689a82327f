"""The monitor worker's loop: every `poll_s`, read the mesh worker's status into the model, make
sure every advertised log is followed, index what is new in the replicas, and send the changes
to the pages. The page and its API are served from a thread (`bzzz.monitor.web`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import structlog

from bzzz.bus import Client
from bzzz.log.events import decode_entry
from bzzz.mesh.client import MeshClient
from bzzz.monitor.follower import LogFollower
from bzzz.monitor.metrics import MonitorMetrics
from bzzz.monitor.model import ZERO_KEY, MonitorModel
from bzzz.monitor.settings import MonitorSettings
from bzzz.monitor.web import View, WebServer, create_app
from bzzz.paths import MONITOR_ADDR_FILE
from bzzz.runtime import WorkerRuntime

log = structlog.get_logger("bzzz.monitor")


class Monitor:
    """The model, the replicas and the stream, stepped by `step` (the worker calls it in a loop)."""

    def __init__(self, view: View, mesh: MeshClient | None, beat: Callable[[], None] = lambda: None) -> None:
        self.view = view
        self.mesh = mesh
        self.beat = beat  # the worker's heartbeat: a look may take a while, the supervisor must not think us hung

    def step(self) -> int:
        """One look at the mesh and the replicas; how many entries were indexed."""
        view, model, follower = self.view, self.view.model, self.view.follower
        if self.mesh is not None:
            try:
                status = self.mesh.status()
            except Exception as err:  # the mesh worker is (re)starting: the next look will do
                log.info("mesh status unavailable", error=str(err)[:200])
            else:
                with view.lock:
                    model.observe_mesh(status)
                    live_keys = [a.row["log_key"] for a in model.agents.values() if a.live]
                self.beat()
                follower.want([k for k in live_keys if k != ZERO_KEY], self.beat)
        indexed = 0
        with view.lock:
            keys = list(model.logs)
        for key in keys:
            length = follower.changed(key)
            if length is None:
                continue
            with view.lock:
                model.observe_log(key, length)
                start = model.logs[key].indexed
            end = min(length, start + view.settings.index_batch)
            # One entry at a time, into the model (which keeps capped text only): an entry of
            # megabytes is held for as long as it takes to read it, never a batch of them.
            for index, raw in follower.read(key, start, end):
                entry = decode_entry(raw)
                del raw
                with view.lock:
                    model.index(key, index, entry)
                indexed += 1
            if end < length:
                follower.forget_stamp(key)  # the rest on the next look
            self.beat()
        with view.lock:
            changes = model.take_changes()
            agents = model.agents_view()
        view.metrics.indexed.inc(indexed)
        view.metrics.observe(agents, len(follower.following()))
        view.hub.publish(changes)
        return indexed


def build(
    settings: MonitorSettings, data_dir: Path, mesh: MeshClient | None, beat: Callable[[], None] = lambda: None
) -> Monitor:
    model = MonitorModel(settings)
    follower = LogFollower(data_dir, mesh, retry_s=settings.follow_retry_s)
    return Monitor(View(model, follower, MonitorMetrics(), settings), mesh, beat)


def serve(rt: WorkerRuntime, settings: MonitorSettings) -> None:
    """Serve the page and keep the model up to date until the worker is asked to stop."""
    # One quick try per call: a mesh worker that does not answer now is asked again next look.
    mesh = MeshClient(rt.run_dir, client=Client(rt.run_dir, sender=rt.name, timeout_s=2.0, retries=1))
    monitor = build(settings, rt.data_dir, mesh, rt.heartbeat)
    server = WebServer(create_app(monitor.view), settings.http)
    server.start()
    addr = rt.run_dir / MONITOR_ADDR_FILE
    tmp = addr.with_suffix(".tmp")
    tmp.write_text(server.address)
    tmp.replace(addr)
    log.info("monitor at " + server.url, address=server.address)
    try:
        while not rt.stopping.is_set():
            rt.heartbeat()
            started = time.monotonic()
            monitor.step()
            rt.sleep(max(0.0, settings.poll_s - (time.monotonic() - started)))
    finally:
        server.stop()
        mesh.close()


__all__ = ["Monitor", "build", "serve"]
