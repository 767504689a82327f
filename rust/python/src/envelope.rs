//! Glue for the signed envelope: `Limits`, `Envelope`, `sign_envelope`,
//! `verify_envelope`, `forward_envelope`, `message_id`, `peer_id`,
//! `REJECT_REASONS`.
//!
//! Signing, verifying and forwarding run with the GIL released (the Python
//! values are converted first).

use bzzz_core::crypto::{KeyPair, PUBLIC_KEY_LEN};
use bzzz_core::envelope::{self, Envelope, Limits, REJECT_REASONS};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::errors::{key_error, rejected, CoreError};
use crate::payload::{to_py, to_value};

fn key_pair(secret_key: &[u8]) -> PyResult<KeyPair> {
    KeyPair::from_secret_key(secret_key).map_err(key_error)
}

pub(crate) fn limits_or_default(limits: Option<&PyLimits>) -> Limits {
    limits.map_or_else(Limits::default, |l| l.inner)
}

// --- Limits -------------------------------------------------------------------

/// What a receiver accepts (see `bzzz_core::envelope::Limits`).
#[pyclass(frozen, eq, hash, name = "Limits", module = "bzzz._core")]
#[derive(Clone, PartialEq, Hash)]
pub struct PyLimits {
    pub(crate) inner: Limits,
}

#[pymethods]
impl PyLimits {
    #[new]
    #[pyo3(signature = (max_size = 65536, max_hops = 3, max_ttl = 3600, max_clock_skew_ms = 30000))]
    fn new(max_size: usize, max_hops: u8, max_ttl: u32, max_clock_skew_ms: u64) -> Self {
        Self { inner: Limits { max_size, max_hops, max_ttl, max_clock_skew_ms } }
    }
    #[getter]
    fn max_size(&self) -> usize {
        self.inner.max_size
    }
    #[getter]
    fn max_hops(&self) -> u8 {
        self.inner.max_hops
    }
    #[getter]
    fn max_ttl(&self) -> u32 {
        self.inner.max_ttl
    }
    #[getter]
    fn max_clock_skew_ms(&self) -> u64 {
        self.inner.max_clock_skew_ms
    }
    fn __repr__(&self) -> String {
        let l = &self.inner;
        format!(
            "Limits(max_size={}, max_hops={}, max_ttl={}, max_clock_skew_ms={})",
            l.max_size, l.max_hops, l.max_ttl, l.max_clock_skew_ms
        )
    }
}

// --- Envelope -----------------------------------------------------------------

/// A signed envelope that passed every check.
#[pyclass(frozen, eq, name = "Envelope", module = "bzzz._core")]
#[derive(PartialEq)]
pub struct PyEnvelope {
    pub(crate) inner: Envelope,
}

#[pymethods]
impl PyEnvelope {
    #[getter]
    fn r#type(&self) -> &'static str {
        self.inner.message_type().as_str()
    }
    #[getter]
    fn topic(&self) -> &str {
        self.inner.topic()
    }
    #[getter]
    fn node_id(&self) -> &str {
        self.inner.node_id()
    }
    #[getter]
    fn sender<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.sender())
    }
    #[getter]
    fn msg_id(&self) -> &str {
        self.inner.msg_id()
    }
    #[getter]
    fn seq(&self) -> u64 {
        self.inner.seq()
    }
    #[getter]
    fn ts_ms(&self) -> u64 {
        self.inner.ts_ms()
    }
    #[getter]
    fn ttl(&self) -> u32 {
        self.inner.ttl()
    }
    #[getter]
    fn hop_count(&self) -> u8 {
        self.inner.hop_count()
    }
    #[getter]
    fn expires_at_ms(&self) -> u64 {
        self.inner.expires_at_ms()
    }
    /// A new dict on every access.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.inner.payload())
    }
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.signature())
    }
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }
    fn signed_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.signed_bytes())
    }
    fn message_id<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.message_id())
    }
    #[getter]
    fn discussion_key(&self) -> Option<String> {
        self.inner.discussion_key()
    }
    fn __repr__(&self) -> String {
        let e = &self.inner;
        format!(
            "Envelope(type={:?}, topic={:?}, node_id={:?}, msg_id={:?}, seq={}, hop_count={})",
            e.message_type().as_str(),
            e.topic(),
            e.node_id(),
            e.msg_id(),
            e.seq(),
            e.hop_count()
        )
    }
}

// --- functions ----------------------------------------------------------------

/// Sign a new envelope; returns its canonical wire bytes.
#[pyfunction]
#[pyo3(signature = (secret_key, r#type, topic, node_id, payload, *, msg_id = None, seq, ts_ms = None, ttl = 60, hop_count = 0))]
#[allow(clippy::too_many_arguments)]
fn sign_envelope<'py>(
    py: Python<'py>,
    secret_key: &[u8],
    r#type: &str,
    topic: &str,
    node_id: &str,
    payload: &Bound<'py, PyAny>,
    msg_id: Option<String>,
    seq: u64,
    ts_ms: Option<u64>,
    ttl: u32,
    hop_count: u8,
) -> PyResult<Bound<'py, PyBytes>> {
    let pair = key_pair(secret_key)?;
    let payload = to_value(payload, 1)?;
    let msg_id = msg_id.unwrap_or_else(envelope::new_msg_id);
    let ts = ts_ms.unwrap_or_else(envelope::now_ms);
    let bytes = py
        .allow_threads(|| {
            Envelope::sign(&pair, r#type, topic, node_id, &msg_id, seq, ts, ttl, hop_count, payload)
                .map(|e| e.to_bytes())
        })
        .map_err(|e| rejected(py, e))?;
    Ok(PyBytes::new(py, &bytes))
}

/// Parse, check and verify one envelope; raises EnvelopeRejected with a reason.
#[pyfunction]
#[pyo3(signature = (data, limits = None, now_ms = None))]
fn verify_envelope(
    py: Python<'_>,
    data: &[u8],
    limits: Option<&PyLimits>,
    now_ms: Option<u64>,
) -> PyResult<PyEnvelope> {
    let limits = limits_or_default(limits);
    let now = now_ms.unwrap_or_else(envelope::now_ms);
    let inner = py.allow_threads(|| envelope::parse_and_verify(data, &limits, now)).map_err(|e| rejected(py, e))?;
    Ok(PyEnvelope { inner })
}

/// Relay an envelope: verified, then re-signed by the relay with hop_count + 1.
#[pyfunction]
#[pyo3(signature = (data, secret_key, limits = None, now_ms = None))]
fn forward_envelope<'py>(
    py: Python<'py>,
    data: &[u8],
    secret_key: &[u8],
    limits: Option<&PyLimits>,
    now_ms: Option<u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let pair = key_pair(secret_key)?;
    let limits = limits_or_default(limits);
    let now = now_ms.unwrap_or_else(envelope::now_ms);
    let bytes = py
        .allow_threads(|| {
            envelope::parse_and_verify(data, &limits, now).and_then(|e| e.forward(&pair, &limits)).map(|e| e.to_bytes())
        })
        .map_err(|e| rejected(py, e))?;
    Ok(PyBytes::new(py, &bytes))
}

/// The gossipsub message id of an envelope: 20 bytes of BLAKE2b-256 of its canonical form.
#[pyfunction]
fn message_id<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let id = py.allow_threads(|| envelope::message_id(data));
    PyBytes::new(py, &id)
}

/// The libp2p peer id (binary multihash) of an ed25519 public key.
#[pyfunction]
fn peer_id<'py>(py: Python<'py>, public_key: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let key: &[u8; PUBLIC_KEY_LEN] = public_key
        .try_into()
        .map_err(|_| CoreError::new_err(format!("a public key is 32 bytes, not {}", public_key.len())))?;
    Ok(PyBytes::new(py, &envelope::peer_id(key)))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("REJECT_REASONS", PyTuple::new(m.py(), REJECT_REASONS)?)?;
    m.add_class::<PyLimits>()?;
    m.add_class::<PyEnvelope>()?;
    m.add_function(wrap_pyfunction!(sign_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(verify_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(forward_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(message_id, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id, m)?)?;
    Ok(())
}
