"""The public surface of `bzzz`: exactly these names, each documented (as httpx checks its own)."""

import bzzz
import bzzz._core

PUBLIC = {
    "CoreError",
    "EnvelopeRejected",
    "LogCorrupted",
    "VerificationFailed",
    "KeyPair",
    "MerkleLog",
    "Proof",
    "LogVerifier",
    "VerifiedTree",
    "discovery_key",
    "REJECT_REASONS",
    "Limits",
    "Safeguards",
    "Envelope",
    "SeenCache",
    "Gate",
    "sign_envelope",
    "verify_envelope",
    "forward_envelope",
    "message_id",
    "peer_id",
    "__version__",
}


def test_bzzz_exports_exactly_the_public_names() -> None:
    assert set(bzzz.__all__) == PUBLIC
    for name in bzzz.__all__:
        assert getattr(bzzz, name) is getattr(bzzz._core, name)


def test_everything_the_rust_core_exports_is_public_or_deliberately_private() -> None:
    assert set(bzzz._core.__all__) == PUBLIC


def test_every_exported_class_and_function_has_a_docstring() -> None:
    for name in PUBLIC - {"__version__", "REJECT_REASONS"}:
        assert (getattr(bzzz, name).__doc__ or "").strip(), f"{name} has no docstring"
