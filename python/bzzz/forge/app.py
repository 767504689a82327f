"""The forge as one ASGI app: GitHub's REST API at the root, git over smart HTTP beside it.

    /user, /rate_limit, /repos/...        REST (bzzz.forge.routes), JSON as api.github.com
    /OWNER/NAME.git/info/refs ...         git clone / fetch / push (token as the password)
    /_forge/faults                        GET / PUT the fault settings (site admins only)

Anything else is GitHub's 404 body; a wrong method on a known path is a 404 too, as GitHub
answers it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from bzzz.forge.api import ApiError, authenticate, parse_json
from bzzz.forge.faults import Faults, FaultSettings
from bzzz.forge.git_http import BASIC_CHALLENGE, http_backend
from bzzz.forge.limits import ContentLimiter, RateLimiter
from bzzz.forge.render import Renderer
from bzzz.forge.repositories import Repositories
from bzzz.forge.routes import ROUTES
from bzzz.forge.store import Row, Store

log = structlog.get_logger("bzzz.forge")

DB_FILE = "forge.sqlite3"
REPOS_DIR = "repos"


@dataclass
class Forge:
    """The forge's state and settings; `app()` serves it."""

    data_dir: Path
    base_url: str
    rate_limit: int = 5000
    anonymous_rate_limit: int = 60
    # GitHub's secondary limit on content creation (0 = off); the windows are shortened in tests.
    secondary_per_minute: int = 80
    secondary_per_hour: int = 500
    secondary_minute_s: float = 60.0
    secondary_hour_s: float = 3600.0
    faults: FaultSettings = field(default_factory=FaultSettings)
    record: Path | None = None  # every API exchange as a JSON line: for contract checks of a whole run

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / DB_FILE)
        self.git = Repositories(self.data_dir / REPOS_DIR)
        self.render = Renderer(self.store, self.base_url)
        self.limiter = RateLimiter(self.rate_limit, self.anonymous_rate_limit)
        self.content_limiter = ContentLimiter(
            self.secondary_per_minute, self.secondary_per_hour, self.secondary_minute_s, self.secondary_hour_s
        )
        self._faults: Faults | None = None
        self._record_lock = threading.Lock()

    def recorded(self, method: str, path: str, status: int, body: Any) -> None:
        if self.record is None:
            return
        line = json.dumps({"method": method, "path": path, "status": status, "body": body}) + "\n"
        with self._record_lock, self.record.open("a") as out:
            out.write(line)

    def rate_key(self, request: Request, user: Row | None) -> tuple[str, int]:
        if user is not None:
            return f"user:{user['id']}", self.rate_limit
        host = request.client.host if request.client else "unknown"
        return f"ip:{host}", self.anonymous_rate_limit

    def app(self) -> ASGIApp:
        routes = [
            *ROUTES,
            Route("/_forge/faults", self._faults_endpoint, methods=["GET", "PUT"]),
            Route("/{owner}/{name}.git/{rest:path}", self._git_endpoint, methods=["GET", "POST"]),
        ]
        app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
        app.state.forge = self
        self._faults = Faults(app, self.faults)
        return self._faults

    async def _faults_endpoint(self, request: Request) -> Response:
        try:
            user = await authenticate(self.store, request)
            if user is None or not user["site_admin"]:
                raise ApiError(403, "Must be a site administrator")
            assert self._faults is not None
            if request.method == "PUT":
                raw = await request.body()
                parse_json(raw)  # unparseable is GitHub's 400, as on every other endpoint
                try:
                    self._faults.update(FaultSettings.model_validate_json(raw))
                except ValidationError as error:
                    raise ApiError(
                        422,
                        "Validation Failed",
                        errors=[
                            {
                                "resource": "Faults",
                                "code": "invalid",
                                "field": ".".join(map(str, e["loc"])),
                                "message": e["msg"],
                            }
                            for e in error.errors()
                        ],
                    ) from None
                log.info("fault settings changed", settings=self._faults.settings.model_dump())
            return JSONResponse(self._faults.settings.model_dump())
        except ApiError as error:
            return JSONResponse(error.body(), status_code=error.status)

    async def _git_endpoint(self, request: Request) -> Response:
        owner, name, rest = (request.path_params[k] for k in ("owner", "name", "rest"))
        try:
            user = await authenticate(self.store, request)
        except ApiError:
            return Response("Invalid username or token.\n", status_code=401, headers=BASIC_CHALLENGE)
        repo = await run_in_threadpool(self.store.repo, owner, name)
        if repo is None or self.store.permission(repo, user) is None:
            if user is None:  # a private repository asks for credentials first, as GitHub does
                return Response("Authentication required\n", status_code=401, headers=BASIC_CHALLENGE)
            return Response("Repository not found.\n", status_code=404)
        pushing = rest == "git-receive-pack" or request.query_params.get("service") == "git-receive-pack"
        if pushing and not self.store.can_push(repo, user):
            if user is None:
                return Response("Authentication required\n", status_code=401, headers=BASIC_CHALLENGE)
            return Response(f"Permission to {owner}/{name}.git denied to {user['login']}.\n", status_code=403)
        response = await http_backend(
            request,
            self.git,
            repo["owner_login"],
            repo["name"],
            f"/{rest}",
            user["login"] if user is not None else None,
        )
        if pushing and rest == "git-receive-pack":
            await run_in_threadpool(self.store.touch_pushed, repo["id"])
        return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    # GitHub answers an unknown path and a known path with a wrong method alike.
    status = 404 if exc.status_code in (404, 405) else exc.status_code
    return JSONResponse(ApiError(status, "Not Found" if status == 404 else str(exc.detail)).body(), status_code=status)


__all__ = ["Forge"]
