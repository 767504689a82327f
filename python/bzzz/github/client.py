"""One agent's connection to GitHub (or the forge): PyGithub, plus what PyGithub leaves out.

- **Tokens.** `connect()` takes a token source (`bzzz.secrets`): PyGithub asks it for the
  current token on every request (`SourceToken`), and a 401 tells it the token was refused, so
  a rotated token is used without a restart. Every token is registered with `bzzz.redaction`
  before it is used.
- **Failing fast.** `connect()` makes a PyGithub client with short timeouts and a few retries of
  idempotent requests only, paced as GitHub advises (the agent's own loop and outbox decide
  when to try again).
- **Conditional polling.** `Poller.open_issues()` sends the last `ETag` as `If-None-Match`; an
  unchanged list is a 304, which GitHub does not count against the rate limit, so an idle
  agent polling every few seconds costs nothing. Its `RateBudget` keeps every answer's
  `X-RateLimit-Remaining` / `-Reset`; `pause_s()` says how long to hold off when it is spent.
- **Rate limits.** `rate_limited_for()` reads a primary or secondary rate limit (403 or 429)
  as GitHub documents it: how long to wait, from `Retry-After` or `X-RateLimit-Reset`.
- **Pages and the server's clock** for the modules that call GitHub themselves: `next_page()`
  follows a `Link` header, `server_time()` reads the `Date` header (leases are judged by
  GitHub's clock, never the agent's, so agents whose clocks disagree still agree).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from github import Auth, Github
from github.GithubException import GithubException
from urllib3.util.retry import Retry

from bzzz.secrets.source import TokenError, TokenSource


class NoTokenNow(requests.RequestException):
    """The token source has no usable token at the moment (it logged why). A RequestException:
    callers treat it as GitHub being out of reach, and try again later."""


class SourceToken(Auth.Token):
    """PyGithub's token auth, asking `tokens` for the current token on every request."""

    def __init__(self, tokens: TokenSource) -> None:
        super().__init__("unused")  # the base keeps a fixed token; this one reads `tokens`
        self.tokens = tokens

    @property
    def token(self) -> str:
        token = self.tokens.current()
        if token is None:
            raise NoTokenNow("no GitHub token at the moment")
        return token


class _Noticing401(Retry):
    """urllib3's retry policy, which sees every response's status: a 401 tells the token source
    the token was refused (rotated away), so the next request carries a new one."""

    def __init__(self, *args: Any, on_401: Callable[[], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_401 = on_401

    def new(self, **kwargs: Any) -> _Noticing401:
        retry = super().new(**kwargs)
        retry.on_401 = self.on_401
        return retry

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 401 and self.on_401 is not None:
            self.on_401()
        return super().is_retry(method, status_code, has_retry_after)


def connect(
    base_url: str, token: str | TokenSource, *, timeout_s: float = 10.0, pace_s: float = 0.25, write_pace_s: float = 1.0
) -> Github:
    """A PyGithub client that fails fast (a few short retries) instead of retrying for minutes:
    the agent's own loop and outbox decide when to try again. Only idempotent methods are
    retried here: a POST that reached GitHub but whose answer was lost must not be sent again
    blindly (the reporter first looks for what it posted, by its marker)."""
    retry = _Noticing401(
        on_401=None if isinstance(token, str) else token.rejected,
        total=2,
        backoff_factor=0.2,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
        raise_on_status=False,
    )
    # PyGithub's own pacing (its defaults, GitHub's advice against secondary rate limits): at
    # least `pace_s` between requests and `write_pace_s` between writes. The forge needs none.
    return Github(
        base_url=base_url.rstrip("/"),
        auth=Auth.Token(token) if isinstance(token, str) else SourceToken(token),
        timeout=int(max(1, timeout_s)),
        retry=retry,
        per_page=100,
        seconds_between_requests=pace_s or None,
        seconds_between_writes=write_pace_s or None,
    )


@dataclass
class RateBudget:
    remaining: int | None = None
    reset_epoch: int | None = None

    def update(self, headers: dict[str, Any]) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        if "x-ratelimit-remaining" in lowered:
            self.remaining = int(lowered["x-ratelimit-remaining"])
        if "x-ratelimit-reset" in lowered:
            self.reset_epoch = int(lowered["x-ratelimit-reset"])

    def pause_s(self, now: float | None = None) -> float:
        """How long to wait before the next call: 0 unless the budget is spent."""
        if self.remaining is None or self.remaining > 0 or self.reset_epoch is None:
            return 0.0
        return max(0.0, self.reset_epoch - (time.time() if now is None else now))


@dataclass
class Poller:
    """Open issues of one repository, fetched conditionally."""

    github: Github
    repo: str  # owner/name
    budget: RateBudget = field(default_factory=RateBudget)
    labels: tuple[str, ...] = ()  # only issues carrying every one (GitHub filters: the rest is never sent)
    etag: str | None = None
    issues: list[dict[str, Any]] = field(default_factory=list)
    not_modified: int = 0  # polls answered 304

    def open_issues(self) -> list[dict[str, Any]]:
        """Every open issue (not pull requests), oldest first; the cached list when unchanged."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        url = f"/repos/{self.repo}/issues"
        params: dict[str, Any] = {"state": "open", "sort": "created", "direction": "asc", "per_page": 100}
        if self.labels:
            params["labels"] = ",".join(self.labels)
        status, response_headers, body = self.github.requester.requestJson("GET", url, params, headers)
        self.budget.update(response_headers)
        if status == 304:
            self.not_modified += 1
            return self.issues
        if status >= 400:
            raise GithubException(status, body, response_headers)
        items: list[dict[str, Any]] = _json(body)
        # Further pages (over 100 open issues) are fetched whole each time: only the first
        # page's ETag is kept, which changes whenever any open issue does.
        next_url = next_page(response_headers)
        while next_url is not None:
            page_status, page_headers, page_body = self.github.requester.requestJson("GET", next_url)
            self.budget.update(page_headers)
            if page_status >= 400:
                raise GithubException(page_status, page_body, page_headers)
            items += _json(page_body)
            next_url = next_page(page_headers)
        self.etag = {k.lower(): v for k, v in response_headers.items()}.get("etag")
        self.issues = [i for i in items if "pull_request" not in i]
        return self.issues


def next_page(headers: dict[str, Any]) -> str | None:
    """The `rel="next"` URL of a paginated answer's `Link` header, if there is a next page."""
    link = {k.lower(): v for k, v in headers.items()}.get("link", "")
    for part in str(link).split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            return part[part.index("<") + 1 : part.index(">")]
    return None


def _json(body: str) -> Any:
    import json

    return json.loads(body) if body else []


RATE_LIMIT_DEFAULT_S = 60.0  # GitHub: without Retry-After or a spent budget, wait a minute
RATE_LIMIT_MAX_S = 3660.0  # the primary limit resets within the hour


def rate_limited_for(error: Exception) -> float | None:
    """Seconds GitHub asks the client to wait, if `error` is a rate limit (a primary one, a
    secondary one, 429), as its documentation says to read it: `Retry-After`, else
    `X-RateLimit-Reset` when the budget is spent, else a minute. None: not a rate limit."""
    if not isinstance(error, GithubException):
        return None
    headers = {str(k).lower(): str(v) for k, v in (error.headers or {}).items()}
    secondary = "secondary rate limit" in str(error.data).lower()
    if not (
        error.status == 429
        or (
            error.status == 403
            and ("retry-after" in headers or headers.get("x-ratelimit-remaining") == "0" or secondary)
        )
    ):
        return None
    delay = RATE_LIMIT_DEFAULT_S
    retry_after = headers.get("retry-after", "").strip()
    reset = headers.get("x-ratelimit-reset", "").strip()
    if retry_after.isdigit():
        delay = float(retry_after)
    elif headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
        delay = float(reset) - time.time() + 1.0
    return min(max(delay, 1.0), RATE_LIMIT_MAX_S)


def server_time(headers: dict[str, Any]) -> float | None:
    """GitHub's clock at the moment it answered (the `Date` header), as an epoch."""
    date = {k.lower(): v for k, v in headers.items()}.get("date")
    if not date:
        return None
    try:
        return float(parsedate_to_datetime(date).timestamp())
    except (TypeError, ValueError):
        return None


__all__ = [
    "NoTokenNow",
    "Poller",
    "RateBudget",
    "SourceToken",
    "TokenError",
    "connect",
    "next_page",
    "rate_limited_for",
    "server_time",
]
