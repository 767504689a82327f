"""What every REST call of the forge goes through, as on api.github.com.

Authentication (`Authorization: token T`, `Bearer T`, or HTTP Basic with the token as the
password; a bad token is a 401 "Bad credentials", no token is anonymous), the primary rate
limit (`X-RateLimit-*` headers; a 403 once used up), the secondary limit on content creation
(both counted by `bzzz.forge.limits`), a JSON body (a 400 "Problems parsing JSON" if it is not
strict JSON in UTF-8: invalid UTF-8, a lone surrogate escape, NaN, a truncated document are all
refused before any handler sees them), ETags (`If-None-Match` -> 304, which does not count
against the rate limit), pagination (`per_page`, `page`, and a `Link` header), and GitHub's error bodies.
A handler raises `ApiError` for anything else; an unexpected exception is a 500 with
GitHub's body, logged, never a traceback on the wire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec
import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bzzz.forge.render import Renderer
from bzzz.forge.store import Row, Store

log = structlog.get_logger("bzzz.forge")

DOCS = "https://docs.github.com/rest"
SECONDARY_DOCS = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
# GitHub's words when content creation is what went over the secondary limit (PyGithub and
# octokit recognise a secondary limit by this message).
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content "
    "creation. Please retry your request again later."
)
MAX_BODY_BYTES = 1024 * 1024  # GitHub refuses larger API bodies too (its limits vary by endpoint)
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.errors, self.headers = status, message, errors, headers or {}
        self.documentation_url = documentation_url

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": str(self.status),
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def invalid(resource: str, field_name: str, code: str = "invalid", message: str | None = None) -> ApiError:
    error: dict[str, Any] = {"resource": resource, "field": field_name, "code": code}
    if message:
        error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


def inspect(value: Any, limit: int = 100) -> str:
    """A JSON value as GitHub's (Ruby) schema errors show it: nil, true, 5, "text", [1, 2], {"a"=>1}."""
    if value is None:
        text = "nil"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(inspect(v, limit) for v in value[:20]) + (", ..." if len(value) > 20 else "") + "]"
    elif isinstance(value, dict):
        items = list(value.items())
        text = (
            "{"
            + ", ".join(f"{json.dumps(k, ensure_ascii=False)}=>{inspect(v, limit)}" for k, v in items[:20])
            + (", ..." if len(items) > 20 else "")
            + "}"
        )
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def wrong_type(where: str, value: Any, expected: str) -> ApiError:
    """GitHub's answer when a body fails its schema: 422 "Invalid request", naming the place and the value."""
    return ApiError(422, f"Invalid request.\n\nFor '{where}', {inspect(value)} is not {expected}.")


def parse_json(raw: bytes) -> Any:
    """A request body as GitHub reads it: strict JSON (RFC 8259) in UTF-8; ApiError(400) otherwise."""
    try:
        # msgspec refuses what Python's json lets through and would only fail later (a lone
        # surrogate cannot be stored or sent back, NaN is not JSON, nesting past the stack).
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError, ValueError):
        raise ApiError(400, "Problems parsing JSON") from None


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Context:
    """One API call: who asks, with what, and the forge's state."""

    request: Request
    store: Store
    render: Renderer
    user: Row | None
    body: Any
    forge: Any  # bzzz.forge.app.Forge (typed loosely: it imports this module)
    body_given: bool = False  # a JSON `null` is a body, an empty one is not

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def me(self) -> Row:
        if self.user is None:
            raise ApiError(401, "Requires authentication")
        return self.user

    def json_object(self) -> dict[str, Any]:
        if self.body is None and not self.body_given:
            return {}
        if not isinstance(self.body, dict):
            # GitHub's words for a body that is JSON but not an object (its schema's root is `links/0/schema`).
            raise wrong_type("links/0/schema", self.body, "an object")
        return self.body

    def paginate(self, items: Sequence[Any]) -> Reply:
        """One page of `items` with GitHub's `Link` header (first, prev, next, last)."""
        per_page = self._int_query("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
        page = self._int_query("page", 1, 1, 10**9)
        last = max(1, -(-len(items) // per_page))
        start = (page - 1) * per_page
        links = []
        query = dict(self.request.query_params)
        url = str(self.request.url.replace(query=""))

        def link(n: int, rel: str) -> str:
            return f'<{url}?{urlencode({**query, "per_page": per_page, "page": n})}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links = [link(1, "first"), link(min(page - 1, last), "prev")] + links
        return Reply(200, list(items[start : start + per_page]), {"Link": ", ".join(links)} if links else {})

    def _int_query(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.query(name)
        if raw is None or raw == "":
            return default
        try:
            return min(max(int(raw), low), high)
        except ValueError:
            raise invalid("Query", name, message=f"{name} must be an integer") from None


def secondary_limit_error(wait_s: float, rate_headers: dict[str, str]) -> ApiError:
    retry_after = max(1, math.ceil(wait_s))
    return ApiError(
        403,
        SECONDARY_MESSAGE,
        documentation_url=SECONDARY_DOCS,
        headers={**rate_headers, "Retry-After": str(retry_after)},
    )


def token_of(request: Request) -> str | None:
    """The token a request carries, if any; ApiError(401) for an Authorization header we cannot read."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme in ("token", "bearer") and value.strip():
        return value.strip()
    if scheme == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "Bad credentials") from None
        return password or None
    raise ApiError(401, "Bad credentials")


async def authenticate(store: Store, request: Request) -> Row | None:
    """The user a request's token belongs to; None without a token; ApiError(401) for a bad one."""
    token = token_of(request)
    if token is None:
        return None
    user = await run_in_threadpool(store.user_for_token, token)
    if user is None:
        raise ApiError(401, "Bad credentials")
    return user


Handler = Callable[[Context], Reply]


def json_response(status: int, body: Any, headers: dict[str, str]) -> Response:
    if status in (204, 304) or body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def endpoint(handler: Handler, *, creates_content: bool = False) -> Callable[[Request], Any]:
    """A Starlette endpoint running `handler` with everything above around it.

    `creates_content`: the operation is one GitHub counts towards its secondary limit on
    content creation (see `bzzz.forge.limits.ContentLimiter`); only a call that succeeds uses up a slot.
    """

    async def run(request: Request) -> Response:
        forge = request.app.state.forge
        rate_headers: dict[str, str] = {}
        content_slot: tuple[str, float] | None = None
        try:
            length = request.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                raise ApiError(413, "Payload too large")
            raw = await request.body()
            if len(raw) > MAX_BODY_BYTES:
                raise ApiError(413, "Payload too large")
            given = request.method not in ("GET", "HEAD") and raw.strip() != b""
            body = parse_json(raw) if given else None
            user = await authenticate(forge.store, request)
            key, limit = forge.rate_key(request, user)
            allowed, rate_headers = forge.limiter.take(key, limit)
            if not allowed:
                who = f"user ID {user['id']}" if user is not None else request.client.host if request.client else "you"
                raise ApiError(403, f"API rate limit exceeded for {who}.")
            if creates_content and user is not None:
                wait, stamp = forge.content_limiter.take(key)
                if wait is not None:
                    raise secondary_limit_error(wait, rate_headers)
                content_slot = (key, stamp)
            ctx = Context(request, forge.store, forge.render, user, body, forge, body_given=given)
            reply = await run_in_threadpool(handler, ctx)
            if content_slot is not None and not 200 <= reply.status < 300:
                forge.content_limiter.give_back(*content_slot)
        except ApiError as error:
            if content_slot is not None:
                forge.content_limiter.give_back(*content_slot)
            forge.recorded(request.method, request.url.path, error.status, error.body())
            return json_response(error.status, error.body(), {**rate_headers, **error.headers})
        except Exception:  # a bug must not leak a traceback; GitHub answers 500 with its body
            if content_slot is not None:
                forge.content_limiter.give_back(*content_slot)
            log.exception("forge request failed", method=request.method, path=request.url.path)
            forge.recorded(request.method, request.url.path, 500, ApiError(500, "Server Error").body())
            return json_response(500, ApiError(500, "Server Error").body(), rate_headers)
        headers = {**rate_headers, **reply.headers}
        forge.recorded(request.method, request.url.path, reply.status, reply.body)
        if request.method == "GET" and reply.status == 200:
            payload = json.dumps(reply.body, separators=(",", ":")).encode()
            etag = f'W/"{hashlib.sha256(payload).hexdigest()[:40]}"'
            headers["ETag"] = etag
            if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
                headers.update(forge.limiter.give_back(key, limit))
                return Response(status_code=304, headers=headers)
            return Response(payload, status_code=200, headers=headers, media_type="application/json; charset=utf-8")
        return json_response(reply.status, reply.body, headers)

    return run


__all__ = [
    "ApiError",
    "Context",
    "Reply",
    "authenticate",
    "endpoint",
    "inspect",
    "invalid",
    "not_found",
    "parse_json",
    "token_of",
    "wrong_type",
]
