//! Exceptions raised by `bzzz._core`, and the one place Rust errors become them.
//!
//! ```text
//! ValueError
//!  └─ CoreError                 bad input to the core (wrong key length, bad index, ...)
//!      ├─ LogCorrupted          stored log data that fails its checks on open / verify
//!      ├─ VerificationFailed    a proof, signature or tree hash that does not check out
//!      └─ EnvelopeRejected      an envelope refused; `.reason` is one of REJECT_REASONS
//! OSError                       I/O failures: FileNotFoundError, FileExistsError, ... as Python's own
//! ```

use bzzz_core::crypto::KeyError;
use bzzz_core::envelope::{InvalidSafeguards, Reason, Rejected};
use bzzz_core::log::LogError;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(bzzz._core, CoreError, PyValueError, "Bad input to the Bzzz core.");
create_exception!(
    bzzz._core,
    LogCorrupted,
    CoreError,
    "Stored log data failed its integrity checks; the log cannot be trusted as it is."
);
create_exception!(
    bzzz._core,
    VerificationFailed,
    CoreError,
    "A proof, signature or tree hash did not verify against the public key."
);
create_exception!(
    bzzz._core,
    EnvelopeRejected,
    CoreError,
    "An envelope was refused. `reason` says why, from a closed set (see REJECT_REASONS)."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("CoreError", py.get_type::<CoreError>())?;
    m.add("LogCorrupted", py.get_type::<LogCorrupted>())?;
    m.add("VerificationFailed", py.get_type::<VerificationFailed>())?;
    m.add("EnvelopeRejected", py.get_type::<EnvelopeRejected>())?;
    Ok(())
}

pub fn key_error(err: KeyError) -> PyErr {
    CoreError::new_err(err.to_string())
}

/// I/O errors as Python's own `OSError` subclasses, the rest as the core's.
pub fn log_error(err: LogError) -> PyErr {
    match err {
        LogError::Io(e) => PyErr::from(e),
        LogError::Key(e) => key_error(e),
        e @ LogError::Corrupted { .. } => LogCorrupted::new_err(e.to_string()),
        LogError::Verification(msg) => VerificationFailed::new_err(msg),
        LogError::Invalid(msg) => CoreError::new_err(msg),
    }
}

pub fn invalid_safeguards(err: InvalidSafeguards) -> PyErr {
    CoreError::new_err(err.to_string())
}

/// `EnvelopeRejected` with its machine-readable `reason` attribute set.
pub fn rejected(py: Python<'_>, err: Rejected) -> PyErr {
    let exc = EnvelopeRejected::new_err(err.to_string());
    // Exception instances have a __dict__, so this cannot fail in practice; if it
    // somehow did, the reason is still in the message.
    let _ = exc.value(py).setattr("reason", err.reason.as_str());
    exc
}

/// A Python value refused as the same value would be on the wire.
pub fn malformed(py: Python<'_>, message: String) -> PyErr {
    rejected(py, Rejected::new(Reason::Malformed, message))
}
