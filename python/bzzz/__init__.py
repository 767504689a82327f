"""Bzzz: a decentralized task-execution mesh of agents that run local AI models.

The public surface is re-exported here; everything else is private to its
sub-package (one per concern: `log`, `cli`, and later `mesh`, `github`, ...).
"""

from bzzz._core import (
    CoreError,
    EnvelopeRejected,
    KeyPair,
    LogCorrupted,
    LogVerifier,
    MerkleLog,
    Proof,
    VerificationFailed,
    __version__,
    discovery_key,
)

__all__ = [
    "CoreError",
    "EnvelopeRejected",
    "KeyPair",
    "LogCorrupted",
    "LogVerifier",
    "MerkleLog",
    "Proof",
    "VerificationFailed",
    "__version__",
    "discovery_key",
]
