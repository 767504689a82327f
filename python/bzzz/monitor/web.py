"""The monitor's HTTP side (Starlette, served by uvicorn in a thread of the monitor worker):
the page, its JSON API, the live stream (server-sent events) and /metrics.

The worker's loop owns the model and changes it under `View.lock`; the handlers read it under
the same lock. Changes reach the pages through `Hub.publish`, which hands each connected
page its frames on the server's event loop. A page that falls too far behind is disconnected
(its EventSource reconnects and loads the whole state again) rather than buffered forever.

Every response carries a CSP of `default-src 'self'` (no inline script anywhere: even a bug
that put peer HTML into the page could not run it) and `nosniff`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bzzz.monitor.follower import LogFollower
from bzzz.monitor.metrics import MonitorMetrics
from bzzz.monitor.model import Change, MonitorModel, entry_view
from bzzz.monitor.settings import MonitorSettings, parse_host_port

log = structlog.get_logger("bzzz.monitor")

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
CLIENT_QUEUE_MAX = 2000  # frames a slow page may have waiting before it is made to reconnect
KEEPALIVE_S = 15.0
_KEY = re.compile(r"^[0-9a-f]{64}$")


class _Client:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.closed = False

    def put(self, frame: str) -> None:  # on the client's loop
        if self.closed:
            return
        if self.queue.qsize() >= CLIENT_QUEUE_MAX:
            self.closed = True
            self.queue.put_nowait(None)  # too far behind: reconnect and reload
            return
        self.queue.put_nowait(frame)


class Hub:
    """The live stream's fan-out: changes in (from any thread), SSE frames out to each page."""

    def __init__(self, metrics: MonitorMetrics) -> None:
        self.metrics = metrics
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> _Client:
        client = _Client(asyncio.get_running_loop())
        with self._lock:
            self._clients.add(client)
            self.metrics.sse_clients.set(len(self._clients))
        return client

    def unsubscribe(self, client: _Client) -> None:
        with self._lock:
            self._clients.discard(client)
            self.metrics.sse_clients.set(len(self._clients))

    def publish(self, changes: list[Change]) -> None:
        if not changes:
            return
        frames = [sse_frame(c.event, c.data) for c in changes]
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            for frame in frames:
                try:
                    client.loop.call_soon_threadsafe(client.put, frame)
                except RuntimeError:  # its loop has closed (the server is stopping)
                    break
            else:
                self.metrics.events_sent.inc(len(frames))


def sse_frame(event: str, data: Any) -> str:
    # JSON holds no raw newline, so one data line carries it whole.
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


@dataclass
class View:
    """What the handlers read: the model (under `lock`), the replicas, the stream, the metrics."""

    model: MonitorModel
    follower: LogFollower
    metrics: MonitorMetrics
    settings: MonitorSettings
    lock: threading.Lock = field(default_factory=threading.Lock)
    hub: Hub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = Hub(self.metrics)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw):
        raise ValueError(f"{name} must be a whole number, got {raw[:40]!r}")
    return min(max(int(raw), low), high)


def create_app(view: View) -> Starlette:
    settings = view.settings

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    async def agents(request: Request) -> Response:
        with view.lock:
            return JSONResponse({"agents": view.model.agents_view()})

    async def topology(request: Request) -> Response:
        with view.lock:
            return JSONResponse(view.model.topology())

    async def tasks(request: Request) -> Response:
        try:
            offset = _int(request, "offset", 0, 0, 10**12)
            limit = _int(request, "limit", 100, 1, 1000)
        except ValueError as err:
            return _error(400, str(err))
        with view.lock:
            return JSONResponse(view.model.tasks_page(offset, limit))

    async def discussions(request: Request) -> Response:
        with view.lock:
            return JSONResponse({"discussions": view.model.discussions_view()})

    def logs(request: Request) -> Response:  # sync: reads the replica in a worker thread
        key = request.path_params["key"]
        if not _KEY.match(key):
            return _error(400, "a log key is 64 lowercase hex digits")
        try:
            start = _int(request, "start", 0, 0, 10**12)
            limit = _int(request, "limit", 100, 1, settings.page_max)
        except ValueError as err:
            return _error(400, str(err))
        with view.lock:
            info = view.model.log_info(key)
        if info is None:
            return _error(404, "this monitor does not follow that log")
        try:
            entries = [
                entry_view(i, raw, settings.text_max_bytes) for i, raw in view.follower.read(key, start, start + limit)
            ]
        except FileNotFoundError:
            entries = []
        return JSONResponse({**info, "length": max(info["length"], start + len(entries)), "entries": entries})

    def proof(request: Request) -> Response:
        key, raw_index = request.path_params["key"], request.path_params["index"]
        if not _KEY.match(key) or not re.fullmatch(r"[0-9]{1,12}", raw_index):
            return _error(400, "expected /api/logs/<64 hex digits>/<entry index>/proof")
        try:
            return JSONResponse(view.follower.proof(key, int(raw_index)))
        except FileNotFoundError:
            return _error(404, "this monitor holds no copy of that log")
        except IndexError:
            return _error(404, f"the log has no entry {raw_index}")

    async def events(request: Request) -> Response:
        client = view.hub.subscribe()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\nevent: hello\ndata: {}\n\n"
                while True:
                    try:
                        frame = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    if frame is None:
                        return
                    yield frame
            finally:
                view.hub.unsubscribe(client)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(view.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/agents", agents),
            Route("/api/topology", topology),
            Route("/api/tasks", tasks),
            Route("/api/discussions", discussions),
            Route("/api/logs/{key}", logs),
            Route("/api/logs/{key}/{index}/proof", proof),
            Route("/events", events),
            Route("/metrics", metrics),
            Route("/favicon.ico", no_icon),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    app.middleware("http")(headers)
    return app


class WebServer:
    """uvicorn in a thread of its own, on a socket bound before it starts (so port 0 works and
    the address is known at once)."""

    def __init__(self, app: Starlette, http: str) -> None:
        host, port = parse_host_port(http)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.socket.listen(128)
        self.host, self.port = host, int(self.socket.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=2, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="monitor-http", daemon=True)

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/"

    def _serve(self) -> None:
        self.server.run(sockets=[self.socket])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5.0)
        self.socket.close()


__all__ = ["Hub", "View", "WebServer", "create_app", "sse_frame"]
