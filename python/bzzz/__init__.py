"""Bzzz: a decentralized task-execution mesh of agents that run local AI models.

The public surface is re-exported here; everything else is private to its
sub-package (one per concern: `log`, `cli`, and later `mesh`, `github`, ...).
"""

from bzzz._core import (
    CoreError,
    discovery_key,
    Envelope,
    EnvelopeRejected,
    forward_envelope,
    Gate,
    KeyPair,
    Limits,
    LogCorrupted,
    LogVerifier,
    MerkleLog,
    message_id,
    peer_id,
    Proof,
    REJECT_REASONS,
    Safeguards,
    SeenCache,
    sign_envelope,
    VerificationFailed,
    VerifiedTree,
    verify_envelope,
    __version__,
)

__all__ = [
    "CoreError",
    "discovery_key",
    "Envelope",
    "EnvelopeRejected",
    "forward_envelope",
    "Gate",
    "KeyPair",
    "Limits",
    "LogCorrupted",
    "LogVerifier",
    "MerkleLog",
    "message_id",
    "peer_id",
    "Proof",
    "REJECT_REASONS",
    "Safeguards",
    "SeenCache",
    "sign_envelope",
    "VerificationFailed",
    "VerifiedTree",
    "verify_envelope",
    "__version__",
]
