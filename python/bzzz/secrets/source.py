"""The token source the github and executor workers ask for the *current* GitHub token.

`open_source(settings)` picks one from `[github_token]` (`bzzz.secrets.settings`). A source
answers `current()` on every request (cheap: a `stat`, or a clock check between Vault reads),
so a rotated token is used at once, by a running worker. It logs a change of its health once
(`Health`): trouble, the token given up, and the recovery, never one line per request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Protocol

import structlog
from pydantic import ValidationError

from bzzz.redaction import register_secret
from bzzz.secrets.settings import SETTINGS_ENV, Source, TokenSourceSettings

log = structlog.get_logger("bzzz.secrets")


class TokenError(Exception):
    """No usable token source: say where a token was looked for."""


class TokenSource(Protocol):
    def current(self) -> str | None:
        """The token to use now; None while there is none usable (the source has logged why)."""

    def rejected(self) -> None:
        """GitHub answered 401 to the current token: look for a new one at once."""

    def close(self) -> None: ...


def registered(token: str) -> str:
    """`token`, registered with `bzzz.redaction` first: no log, signed-log entry or GitHub text
    of this process will ever carry it. A value redaction cannot take (too short) is refused."""
    try:
        register_secret(token)
    except ValueError as error:
        raise TokenError(f"the GitHub token is not usable: {error}") from None
    return token


class Health:
    """A source's state, logged when it changes: one line for trouble, one for recovery."""

    def __init__(self, what: str) -> None:
        self.what, self.state = what, "ok"
        self._lock = threading.Lock()

    def set(self, state: str, event: str, **fields: object) -> None:
        with self._lock:
            if state == self.state:
                return
            self.state = state
        (log.info if state == "ok" else log.warning)(event, source=self.what, **fields)


class StaticToken:
    """`$GITHUB_TOKEN`: read once, as agents always did (rotating it means restarting)."""

    def __init__(self, token: str) -> None:
        self._token = registered(token.strip())

    def current(self) -> str | None:
        return self._token

    def rejected(self) -> None:
        pass  # nothing else to read

    def close(self) -> None:
        pass


def configured(environ: Mapping[str, str] | None = None) -> TokenSourceSettings:
    """This worker's `[github_token]`, as the supervisor passed it (checked when the config was
    read); the default (GITHUB_TOKEN_FILE, else GITHUB_TOKEN) for a worker started by hand."""
    env = os.environ if environ is None else environ
    try:
        return TokenSourceSettings.model_validate_json(env.get(SETTINGS_ENV) or "{}")
    except ValidationError as error:
        raise TokenError(f"{SETTINGS_ENV} is not a valid [github_token]: {error.errors()[0]['msg']}") from None


def open_source(settings: TokenSourceSettings | None = None, environ: Mapping[str, str] | None = None) -> TokenSource:
    """The source `settings` (default: `configured()`) names, with its first token read. A
    TokenError says why there is none; a Vault that does not answer yet is not an error: the
    source logs it once and keeps asking."""
    from bzzz.secrets.files import FileToken  # here: a file source must not load hvac

    env = os.environ if environ is None else environ
    settings = configured(env) if settings is None else settings
    if env.get("GITHUB_TOKEN"):  # given beside a file or a vault, it is still a secret of this process
        registered(env["GITHUB_TOKEN"].strip())
    if settings.source is Source.FILE:
        assert settings.file is not None  # checked by the settings model
        return FileToken(settings.file)
    if settings.source is Source.VAULT:
        from bzzz.secrets.vault import VaultToken

        assert settings.vault is not None
        return VaultToken(settings.vault, env)
    if env.get("GITHUB_TOKEN_FILE"):
        from pathlib import Path

        return FileToken(Path(env["GITHUB_TOKEN_FILE"]))
    if env.get("GITHUB_TOKEN"):
        return StaticToken(env["GITHUB_TOKEN"])
    raise TokenError("no GitHub token: set GITHUB_TOKEN_FILE (preferred) or GITHUB_TOKEN, or [github_token]")
