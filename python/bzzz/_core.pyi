"""Typed stubs for `bzzz._core`, the Rust core (see rust/python/src/lib.rs)."""

__version__: str

class CoreError(ValueError):
    """Bad input to the core: wrong key or signature length, index out of range, ..."""

class LogCorrupted(CoreError):
    """Stored log data failed its integrity checks on open or verify."""

class VerificationFailed(CoreError):
    """A proof, signature or tree hash did not verify against the public key."""

class EnvelopeRejected(CoreError):
    """An envelope was refused before any Python code acted on it."""

    reason: str
    """One of `REJECT_REASONS`."""

# --- log: begin ---
# --- log: end ---

# --- envelope: begin ---
# --- envelope: end ---
