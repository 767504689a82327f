"""PyGithub, as the workers connect it (`bzzz.github.client.connect`), asks the token source on
every request and tells it when GitHub (here the forge) answers 401."""

from __future__ import annotations

from pathlib import Path

import pytest
from github.GithubException import BadCredentialsException

from bzzz.github.client import NoTokenNow, connect
from tests.forge.harness import start_forge, stop_forge
from tests.secrets.harness import NEW, OLD, SEED, rotate_on_forge


class RotatedAfter401:
    """A source that holds the old token until it is told GitHub refused it (as Vault after a
    rotation: the new value is there, but read only when asked again)."""

    def __init__(self) -> None:
        self.token: str | None = OLD
        self.rejections = 0

    def current(self) -> str | None:
        return self.token

    def rejected(self) -> None:
        self.rejections += 1
        self.token = NEW

    def close(self) -> None:
        pass


def test_a_401_tells_the_source_and_the_next_request_carries_the_new_token(tmp_path: Path) -> None:
    forge = start_forge(tmp_path / "forge", seed=SEED)
    try:
        tokens = RotatedAfter401()
        github = connect(forge.url, tokens, pace_s=0, write_pace_s=0)
        assert github.get_user().login == "agent-1"
        assert tokens.rejections == 0
        rotate_on_forge(forge, OLD, NEW)
        with pytest.raises(BadCredentialsException):  # the request in flight carried the old token
            github.get_user().login  # noqa: B018 (PyGithub fetches on attribute access)
        assert tokens.rejections == 1
        assert github.get_user().login == "agent-1"  # no new client: the same one, the new token
        tokens.token = None
        with pytest.raises(NoTokenNow):  # no token at the moment: a request error, as GitHub down is
            github.get_user().login  # noqa: B018
    finally:
        stop_forge(forge)
