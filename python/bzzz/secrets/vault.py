"""A GitHub token kept in HashiCorp Vault (KV v2), read with hvac.

- **Login.** `auth = token_file`: a Vault token read from a file (read again before each read
  of the secret: a new one, as a Vault Agent sink writes it, is adopted); `env`: `$VAULT_TOKEN`;
  both renewed (`renew-self`) when two thirds of their TTL have passed. `approle`: `role_id`
  from the config, `secret_id` from a file; logged in again when two thirds of the login's TTL
  have passed. A token without a TTL (a root token) is never renewed. The Vault token is
  registered with `bzzz.redaction` too.
- **Reading.** The secret is read at start, then by a thread of the source's own (so a hanging
  Vault never stalls a worker's main loop or a GitHub request): every `refresh_s` (or its lease,
  if shorter), when the login is due for renewal, and at once when GitHub answers 401 (a
  rotation), at most once a second.
- **Failing.** While Vault does not answer or refuses, the source asks again every `retry_s`,
  not on every request, and keeps handing out the last token until `max_stale_s` have passed
  since it was last read: that is its expiry. Past it, `current()` is None (the workers take no
  work) until Vault answers. Each change is one log line (`Health`).
- **The token's own expiry.** A GitHub token that expires (a fine-grained token, an app's
  installation token) may be stored with an `expires_at` field beside it (RFC 3339, e.g.
  `2027-01-31T00:00:00Z`): it is never handed out past that time, Vault up or down, since GitHub
  would refuse it anyway; an `expires_at` that is not such a time refuses the secret.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

import hvac
import requests
from hvac.exceptions import Forbidden, Unauthorized, VaultError

from bzzz.secrets.settings import VaultAuth, VaultSettings
from bzzz.secrets.source import Health, TokenError, log, registered

RENEW_AT = 2 / 3  # of a login's TTL: renewed (or logged in again) with a third still to run
REJECTED_AT_MOST_EVERY_S = 1.0  # a 401 storm must not become a Vault storm


class _Refused(Exception):
    """Vault answered, but not with a usable token."""


class VaultToken:
    def __init__(
        self,
        settings: VaultSettings,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self.environ, self.clock, self.wall_clock = settings, environ, clock, wall_clock
        self.where = f"{settings.address.rstrip('/')} {settings.mount}/{settings.path}#{settings.key}"
        self.client = hvac.Client(
            url=settings.address,
            timeout=settings.timeout_s,
            verify=str(settings.ca_file) if settings.ca_file else True,
            namespace=settings.namespace,
        )
        self.health = Health(f"vault {self.where}")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None  # the token's own expiry (`expires_at`), wall-clock epoch
        self._read_at = -math.inf  # when the token was last read from Vault (the clock's time)
        self._next_read = -math.inf
        self._login_due = -math.inf  # renew or log in again at this time
        self._login_token: str | None = None  # the Vault token in use (token_file / env)
        if auth_needs := self._missing_login():
            raise TokenError(auth_needs)
        self._wake = threading.Event()
        self._closed = False
        self._refresh(clock())  # the first read; a Vault that does not answer yet is logged, not fatal
        # Vault is asked from a thread of its own: a Vault that hangs must not stall the worker's
        # main loop (its heartbeats) nor a request to GitHub, which only ever reads the last answer.
        self._thread = threading.Thread(target=self._run, name="bzzz-vault", daemon=True)
        self._thread.start()

    def _missing_login(self) -> str | None:
        if self.settings.auth is VaultAuth.ENV and not self.environ.get("VAULT_TOKEN"):
            return "[github_token.vault] auth = env, but VAULT_TOKEN is not set"
        return None

    # --- what the workers call ---------------------------------------------------------------

    def current(self) -> str | None:
        with self._lock:
            token, stale_s, expires_at = self._token, self.clock() - self._read_at, self._expires_at
        if token is None:
            return None
        if expires_at is not None and self.wall_clock() >= expires_at:
            self.health.set(
                "expired",
                "no GitHub token: the one in Vault is past its expires_at; taking no work until Vault gives another",
                expires_at=datetime.fromtimestamp(expires_at).astimezone().isoformat(timespec="seconds"),
            )
            return None
        if stale_s > self.settings.max_stale_s:
            self._expired(stale_s)
            return None
        return token

    def _expired(self, stale_s: float, **fields: object) -> None:
        self.health.set(
            "expired",
            "no GitHub token: Vault has not given one for longer than max_stale_s; taking no work until it answers",
            stale_s=round(stale_s),
            max_stale_s=self.settings.max_stale_s,
            **fields,
        )

    def rejected(self) -> None:
        with self._lock:
            self._next_read = min(self._next_read, max(self.clock(), self._read_at + REJECTED_AT_MOST_EVERY_S))
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(self.settings.timeout_s * 3)
        self.client.adapter.close()

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                # Read again when due, and renew the login when due (which reads again too).
                wait = min(self._next_read, self._login_due) - self.clock()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            try:
                self._refresh(self.clock())
            except Exception:  # a bug must not end the thread: the token would never be read again
                log.exception("reading the GitHub token from Vault failed", source=self.where)
                with self._lock:
                    self._next_read = self.clock() + self.settings.retry_s

    # --- Vault -------------------------------------------------------------------------------

    def _refresh(self, now: float) -> None:
        settings = self.settings
        try:
            self._log_in(now)
            answer = self.client.secrets.kv.v2.read_secret_version(
                path=settings.path, mount_point=settings.mount, raise_on_deleted_version=True
            )
            value = (answer.get("data") or {}).get("data", {}).get(settings.key)
            if not isinstance(value, str) or not value.strip():
                raise _Refused(f"the secret has no field {settings.key!r} holding a token")
            token = registered(value.strip())
            expires_at = _expiry((answer.get("data") or {}).get("data", {}).get("expires_at"))
        except (VaultError, requests.RequestException, OSError, _Refused, TokenError, LookupError, TypeError) as error:
            with self._lock:
                self._next_read = now + settings.retry_s
            if isinstance(error, (Unauthorized, Forbidden)):
                # The login may have expired or been revoked: log in again (re-read the token file).
                self._login_due, self._login_token = -math.inf, None
            left = settings.max_stale_s - (now - self._read_at)
            if self._expires_at is not None:
                left = min(left, self._expires_at - self.wall_clock())
            if self._token is not None and left > 0:
                self.health.set(
                    "failing",
                    "Vault does not give the GitHub token; keeping the last one until it expires",
                    error=_one_line(error),
                    expires_in_s=round(left),
                )
            elif self._token is None:
                self.health.set("failing", "no GitHub token from Vault yet", error=_one_line(error))
            else:
                self.current()  # it says which expiry has passed, once
            return
        if token != self._token and self._token is not None:
            log.info("the GitHub token in Vault changed: using the new one", source=self.where)
        lease = float(answer.get("lease_duration") or 0)
        with self._lock:
            self._token, self._read_at, self._expires_at = token, now, expires_at
            self._next_read = now + (min(settings.refresh_s, lease) if lease > 0 else settings.refresh_s)
        self.health.set("ok", "Vault gives the GitHub token")

    def _log_in(self, now: float) -> None:
        settings = self.settings
        if settings.auth is VaultAuth.APPROLE:
            if now < self._login_due:
                return
            assert settings.role_id is not None and settings.secret_id_file is not None
            secret_id = _read_secret(settings.secret_id_file, "AppRole secret_id")
            answer = self.client.auth.approle.login(
                role_id=settings.role_id, secret_id=secret_id, mount_point=settings.approle_mount, use_token=True
            )
            registered(self.client.token)
            self._due(now, float(answer["auth"]["lease_duration"]))
            return
        token = (
            _read_secret(settings.token_file, "Vault token")
            if settings.token_file is not None
            else self.environ.get("VAULT_TOKEN", "").strip()
        )
        if token != self._login_token:  # first use, or the file holds a new one: adopt it as it is
            self.client.token, self._login_token = registered(token), token
            self._due(now, float(self.client.auth.token.lookup_self()["data"]["ttl"]))
        elif now >= self._login_due:
            answer = self.client.auth.token.renew_self()
            self._due(now, float(answer["auth"]["lease_duration"]))

    def _due(self, now: float, ttl_s: float) -> None:
        self._login_due = now + ttl_s * RENEW_AT if ttl_s > 0 else math.inf


def _expiry(value: object) -> float | None:
    """`expires_at` as an epoch, None where the secret has none."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise _Refused(f"the secret's expires_at is not an RFC 3339 time: {str(value)[:40]!r}") from None
    if when.tzinfo is None:
        raise _Refused(f"the secret's expires_at has no time zone: {str(value)[:40]!r}")
    return when.timestamp()


def _read_secret(path: Path, what: str) -> str:
    value = path.read_text().strip()
    if not value:
        raise _Refused(f"the {what} file {path} is empty")
    return value


def _one_line(error: Exception) -> str:
    if isinstance(error, requests.ConnectionError):
        return f"cannot connect: {type(error).__name__}"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, OSError) and not isinstance(error, requests.RequestException):
        return f"{getattr(error, 'filename', '')}: {error.strerror or error}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
