"""The monitor's own Prometheus series (the issue's contract, section 2), served at the page's /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from bzzz.monitor.text import capped

LABEL_MAX_BYTES = 128  # a node id is peer text: a label keeps a short, capped form of it


# Gauges say `livesum`: under a supervisor with `[metrics]` on, the agent's /metrics sums the
# workers' files, and only the monitor worker sets these, so the sum over live processes is its
# value and a dead worker's stale figure is dropped (as every agent gauge does: bzzz.supervisor.metrics).
LIVE = "livesum"


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.agents = Gauge(
            "bzzz_monitor_agents", "Agents the monitor knows, by state.", ["state"], registry=r, multiprocess_mode=LIVE
        )
        self.followed_logs = Gauge(
            "bzzz_monitor_followed_logs", "Logs the monitor follows.", registry=r, multiprocess_mode=LIVE
        )
        self.indexed = Counter("bzzz_monitor_indexed_entries", "Log entries the monitor has indexed.", registry=r)
        self.lag = Gauge(
            "bzzz_monitor_lag_entries",
            "Entries a live agent advertises that our copy lacks.",
            ["node_id"],
            registry=r,
            multiprocess_mode=LIVE,
        )
        self.sse_clients = Gauge(
            "bzzz_monitor_sse_clients", "Pages connected to the live stream.", registry=r, multiprocess_mode=LIVE
        )
        self.events_sent = Counter("bzzz_monitor_events_sent", "Live-stream events sent to pages.", registry=r)
        self._lagging: set[str] = set()

    def observe(self, agents: list[dict[str, object]], followed: int) -> None:
        live = [a for a in agents if a["live"]]
        self.agents.labels("live").set(len(live))
        self.agents.labels("gone").set(len(agents) - len(live))
        self.followed_logs.set(followed)
        shown = {capped(a["node_id"], LABEL_MAX_BYTES): a["lag"] for a in live}
        for gone in self._lagging - shown.keys():  # a gone agent's series goes with it
            self.lag.remove(gone)
        for node_id, lag in shown.items():
            self.lag.labels(node_id).set(float(lag))  # type: ignore[arg-type]
        self._lagging = set(shown)
