"""Errors crossing from Rust to Python: one tree, stable types, readable messages."""

import pytest

from bzzz._core import (
    REJECT_REASONS,
    CoreError,
    EnvelopeRejected,
    KeyPair,
    LogCorrupted,
    VerificationFailed,
    sign_envelope,
    verify_envelope,
)

TREE = {
    CoreError: ValueError,
    LogCorrupted: CoreError,
    VerificationFailed: CoreError,
    EnvelopeRejected: CoreError,
}


@pytest.mark.parametrize(("error", "parent"), TREE.items(), ids=lambda e: getattr(e, "__name__", ""))
def test_every_core_error_is_a_value_error_under_core_error(error: type, parent: type) -> None:
    assert error.__mro__[1] is parent
    assert issubclass(error, ValueError)
    assert error.__module__ == "bzzz._core"
    assert (error.__doc__ or "").strip()


def test_the_reject_reasons_are_a_closed_documented_set() -> None:
    assert REJECT_REASONS == (
        "size",
        "malformed",
        "schema",
        "signature",
        "source",
        "hops",
        "ttl",
        "skew",
        "duplicate",
        "rate",
        "closed",
        "participants",
    )


def test_a_rejection_carries_its_reason_and_a_readable_message() -> None:
    key = KeyPair.from_seed(b"\x05" * 32)
    data = sign_envelope(
        key.secret_key,
        "escalation",
        "bzzz/meta/escalation",
        "n1",
        {"issue_id": "o/r#1", "reason": "r", "summary": "s", "messages": []},
        seq=1,
        ttl=5,
    )
    with pytest.raises(EnvelopeRejected) as caught:
        verify_envelope(data, now_ms=2**62)
    assert caught.value.reason == "ttl"
    assert "expired" in str(caught.value)
