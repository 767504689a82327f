"""The public surface of `bzzz.bus`: each name documented, every error a BusError."""

from __future__ import annotations

import bzzz.bus
from bzzz.bus import BusError, RequestTimeout, ServiceError


def test_every_public_name_of_the_bus_is_documented() -> None:
    for name in bzzz.bus.__all__:
        value = getattr(bzzz.bus, name)
        if isinstance(value, type):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_every_bus_error_is_a_bus_error_and_says_what_happened() -> None:
    timeout = RequestTimeout("log", "r-1", 4, 8.04, "/run/bzzz/svc-log.sock")
    failed = ServiceError("log", "r-2", "ValueError: entry too large")
    assert isinstance(timeout, BusError) and isinstance(failed, BusError)
    assert str(timeout) == (
        "no reply from service 'log' after 4 attempts over 8.0 s (request r-1, /run/bzzz/svc-log.sock);"
        " is its worker running?"
    )
    assert str(failed) == "service 'log' failed request r-2: ValueError: entry too large"
    assert failed.remote_message == "ValueError: entry too large"
