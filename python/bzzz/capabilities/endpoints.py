"""Ollama endpoints: their URLs, and the models each has, listed with the `ollama` client.

`list_models(url, timeout_s=...)` is the one way an endpoint's models are listed
(`GET /api/tags`): by capability detection, by the executor choosing a model, and by hmmm
choosing a model to think with. It raises whatever the endpoint does wrong (refuses, hangs
past the timeout, answers anything but a model list); callers decide what that means.

Detection asks every endpoint at once and waits a bounded time for all of them together
(`Probes`): each endpoint is asked in a daemon thread of its own, a probe still running from
an earlier round is waited for again rather than started twice (a hung endpoint costs one
thread, not one per round), and an endpoint's change of state (reachable <-> not) is logged
once: at info, or at warning when one that answered stops.
"""

from __future__ import annotations

import functools
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import ollama
import structlog

from bzzz.capabilities.schema import is_utf8

__all__ = ["Endpoint", "Probes", "list_models", "normalize_endpoint"]

log = structlog.get_logger("bzzz.capabilities")


class Endpoint(msgspec.Struct, frozen=True, kw_only=True):
    """One Ollama endpoint as last probed. `reachable` means it answered with a model list."""

    url: str
    reachable: bool
    models: tuple[str, ...] = ()
    error: str | None = None  # why not reachable; for this agent's own status, never advertised


def normalize_endpoint(endpoint: str) -> str:
    """`endpoint` without a trailing slash, or ValueError saying why it is no Ollama URL.

    Credentials in the URL are refused: the ollama client would drop them, and endpoint URLs
    are advertised to every peer.
    """
    text = endpoint.strip()
    if not is_utf8(text):
        raise ValueError(f"endpoint {endpoint!r} is not valid Unicode")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint {endpoint!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"endpoint {endpoint!r}: no credentials in the URL (use OLLAMA_API_KEY)")
    if parts.query or parts.fragment:
        raise ValueError(f"endpoint {endpoint!r}: no query or fragment")
    try:
        _ = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"endpoint {endpoint!r}: {exc}") from None
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """What httpx would build for each client (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), built once.

    Building it reads the whole CA bundle, about 50 ms of CPU under the GIL: per probe and
    per endpoint, that alone could eat a short probe timeout on a busy machine.
    """
    return httpx.create_ssl_context(verify=True, trust_env=True)


def list_models(url: str, *, timeout_s: float, client: Callable[..., Any] = ollama.Client) -> tuple[str, ...]:
    """The models `url` has, in the order it lists them. Raises whatever the endpoint does wrong.

    `client` makes the `ollama.Client` (a stand-in in tests): called with `host`, `timeout`
    and `verify`.
    """
    session = client(host=url, timeout=timeout_s, verify=_tls_context())
    try:
        listing = session.list()
    finally:
        session.close()
    return tuple(m.model for m in listing.models if isinstance(m.model, str) and m.model)


class Probes:
    """Listings in flight, and the last state seen of each endpoint (to log changes once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[tuple[str, ...]]] = {}
        self._reachable: dict[str, bool] = {}

    def start(self, url: str, timeout_s: float) -> Future[tuple[str, ...]]:
        """The running probe of `url`, or a new one: a hung endpoint holds one thread, not one per call."""
        with self._lock:
            future = self._inflight.get(url)
            if future is None or future.done():
                future = Future()
                self._inflight[url] = future
                # A daemon thread, not a pool: a probe stuck past its deadline must not hold up
                # the interpreter's exit (httpx's own timeout ends it soon after anyway).
                thread = threading.Thread(
                    target=_probe_into, args=(future, url, timeout_s), name="bzzz-ollama-probe", daemon=True
                )
                thread.start()
            return future

    def note(self, endpoint: Endpoint) -> None:
        with self._lock:
            before = self._reachable.get(endpoint.url)
            self._reachable[endpoint.url] = endpoint.reachable
        if before == endpoint.reachable:
            return
        if endpoint.reachable:
            log.info("ollama endpoint reachable", url=endpoint.url, models=len(endpoint.models))
        elif before:  # it was serving: it went down (a model that fails to load can crash it)
            log.warning(
                "ollama endpoint went down; its models are no longer offered", url=endpoint.url, error=endpoint.error
            )
        else:
            log.info("ollama endpoint unreachable", url=endpoint.url, error=endpoint.error)


def _probe_into(future: Future[tuple[str, ...]], url: str, timeout_s: float) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        names = list_models(url, timeout_s=timeout_s)
    except Exception as exc:  # anything an endpoint can do wrong: refuse, reset, time out, answer nonsense
        future.set_exception(exc)
    else:
        future.set_result(names)
