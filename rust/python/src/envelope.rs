//! Glue for the signed envelope and the dedup cache: `Limits`, `Safeguards`,
//! `Envelope`, `sign_envelope`, `verify_envelope`, `forward_envelope`,
//! `message_id`, `SeenCache`, `Gate`, `REJECT_REASONS`.
//!
//! Signing, verifying and forwarding run with the GIL released (the Python
//! values are converted first). `SeenCache` and `Gate` keep their state behind
//! a `Mutex`, so one instance may be shared by threads; the lock is never held
//! while waiting for the GIL.

use std::sync::{Mutex, MutexGuard};

use bzzz_core::crypto::KeyPair;
use bzzz_core::dedup;
use bzzz_core::envelope::{
    self, Envelope, Guards, Limits, Map, Rejected, Safeguards, Value, MAX_DEPTH, REJECT_REASONS,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{envelope_rejected, key_error, CoreError};

fn rejected(py: Python<'_>, err: Rejected) -> PyErr {
    envelope_rejected(py, err.reason.as_str(), err.to_string())
}

fn malformed(py: Python<'_>, message: String) -> PyErr {
    rejected(py, Rejected::new(envelope::Reason::Malformed, message))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in the guarded code can panic half-way through an update that
    // matters, so a poisoned lock still holds a consistent value.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// --- Python values <-> JSON values --------------------------------------------

/// A payload from Python: dict, list/tuple, str, int, bool, None. Floats and
/// integers outside i64/u64 are `malformed` (as on the wire); other types are a
/// TypeError. `depth` counts nesting as the envelope does (the envelope is 1).
fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.downcast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(Value::from(n));
        }
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(Value::from(n));
        }
        return Err(malformed(py, "integers must be in -2^63..2^64".into()));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Err(malformed(py, "floats are not allowed in an envelope; use integers".into()));
    }
    if let Ok(s) = obj.downcast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Ok(Value::String(s.to_owned())),
            Err(_) => Err(malformed(py, "strings must be valid Unicode (no lone surrogates)".into())),
        };
    }
    let container = obj.is_instance_of::<PyDict>() || obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>();
    if container && depth >= MAX_DEPTH {
        return Err(malformed(py, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if let Ok(dict) = obj.downcast::<PyDict>() {
        let mut map = Map::new();
        for (key, value) in dict.iter() {
            let Ok(key) = key.downcast::<PyString>() else {
                return Err(PyTypeError::new_err(format!("payload keys must be str, got {}", key.get_type())));
            };
            let key =
                key.to_str().map_err(|_| malformed(py, "keys must be valid Unicode (no lone surrogates)".into()))?;
            map.insert(key.to_owned(), to_value(&value, depth + 1)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items = obj.try_iter()?.map(|item| to_value(&item?, depth + 1)).collect::<PyResult<_>>()?;
        return Ok(Value::Array(items));
    }
    Err(PyTypeError::new_err(format!(
        "payload values must be dict, list, tuple, str, int, bool or None, got {}",
        obj.get_type()
    )))
}

fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else {
                // Never produced by the core (integers only); kept total.
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

fn key_pair(secret_key: &[u8]) -> PyResult<KeyPair> {
    KeyPair::from_secret_key(secret_key).map_err(key_error)
}

fn limits_or_default(limits: Option<&PyLimits>) -> Limits {
    limits.map_or_else(Limits::default, |l| l.inner)
}

// --- Limits -------------------------------------------------------------------

/// What a receiver accepts (see `bzzz_core::envelope::Limits`).
#[pyclass(frozen, eq, hash, name = "Limits", module = "bzzz._core")]
#[derive(Clone, PartialEq, Hash)]
pub struct PyLimits {
    inner: Limits,
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

// --- Safeguards ---------------------------------------------------------------

/// What a gate allows one signer and one discussion (see
/// `bzzz_core::envelope::Safeguards`). Always valid: checked when made.
#[pyclass(frozen, eq, hash, name = "Safeguards", module = "bzzz._core")]
#[derive(Clone, PartialEq)]
pub struct PySafeguards {
    inner: Safeguards,
}

impl std::hash::Hash for PySafeguards {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The rate is finite and above 0, so equal rates have equal bits.
        let s = &self.inner;
        (s.sender_rate.to_bits(), s.sender_burst, s.max_participants, s.discussion_ttl).hash(state);
        (s.max_discussion_messages, s.capacity).hash(state);
    }
}

#[pymethods]
impl PySafeguards {
    #[new]
    #[pyo3(signature = (
        sender_rate = 5.0,
        sender_burst = 20,
        max_participants = 16,
        discussion_ttl = 3600,
        max_discussion_messages = 500,
        capacity = 10_000,
    ))]
    fn new(
        sender_rate: f64,
        sender_burst: u32,
        max_participants: u32,
        discussion_ttl: u32,
        max_discussion_messages: u32,
        capacity: usize,
    ) -> PyResult<Self> {
        let inner = Safeguards {
            sender_rate,
            sender_burst,
            max_participants,
            discussion_ttl,
            max_discussion_messages,
            capacity,
        };
        inner.check().map_err(|e| CoreError::new_err(e.to_string()))?;
        Ok(Self { inner })
    }
    #[getter]
    fn sender_rate(&self) -> f64 {
        self.inner.sender_rate
    }
    #[getter]
    fn sender_burst(&self) -> u32 {
        self.inner.sender_burst
    }
    #[getter]
    fn max_participants(&self) -> u32 {
        self.inner.max_participants
    }
    #[getter]
    fn discussion_ttl(&self) -> u32 {
        self.inner.discussion_ttl
    }
    #[getter]
    fn max_discussion_messages(&self) -> u32 {
        self.inner.max_discussion_messages
    }
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let s = &self.inner;
        // Python's own float repr, so the text evaluates back to an equal value.
        let rate = PyFloat::new(py, s.sender_rate).repr()?;
        Ok(format!(
            "Safeguards(sender_rate={rate}, sender_burst={}, max_participants={}, discussion_ttl={}, \
             max_discussion_messages={}, capacity={})",
            s.sender_burst, s.max_participants, s.discussion_ttl, s.max_discussion_messages, s.capacity
        ))
    }
}

// --- Envelope -----------------------------------------------------------------

/// A signed envelope that passed every check.
#[pyclass(frozen, eq, name = "Envelope", module = "bzzz._core")]
#[derive(PartialEq)]
pub struct PyEnvelope {
    inner: Envelope,
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
    let key: &[u8; bzzz_core::crypto::PUBLIC_KEY_LEN] = public_key
        .try_into()
        .map_err(|_| CoreError::new_err(format!("a public key is 32 bytes, not {}", public_key.len())))?;
    Ok(PyBytes::new(py, &envelope::peer_id(key)))
}

// --- SeenCache ----------------------------------------------------------------

fn monotonic(py: Python<'_>) -> PyResult<f64> {
    static MONOTONIC: GILOnceCell<PyObject> = GILOnceCell::new();
    let f = MONOTONIC.get_or_try_init(py, || Ok::<_, PyErr>(py.import("time")?.getattr("monotonic")?.unbind()))?;
    f.call0(py)?.extract(py)
}

fn check_ttl(what: &str, ttl: f64) -> PyResult<f64> {
    if ttl.is_nan() || ttl < 0.0 {
        return Err(CoreError::new_err(format!("{what} must be a non-negative number of seconds, got {ttl}")));
    }
    Ok(ttl)
}

/// Run `f` on a key's bytes: `str` (its UTF-8 bytes) or `bytes`, so "ab" and
/// b"ab" are one key.
fn with_key<R>(key: &Bound<'_, PyAny>, f: impl FnOnce(&[u8]) -> R) -> PyResult<R> {
    if let Ok(b) = key.downcast::<PyBytes>() {
        return Ok(f(b.as_bytes()));
    }
    if let Ok(s) = key.downcast::<PyString>() {
        let s = s.to_str().map_err(|_| CoreError::new_err("key must be valid Unicode (no lone surrogates)"))?;
        return Ok(f(s.as_bytes()));
    }
    Err(PyTypeError::new_err(format!("key must be str or bytes, got {}", key.get_type())))
}

/// Message ids seen recently: bounded, each entry expiring after its ttl.
#[pyclass(frozen, name = "SeenCache", module = "bzzz._core")]
pub struct PySeenCache {
    inner: Mutex<dedup::SeenCache>,
}

#[pymethods]
impl PySeenCache {
    #[new]
    fn new(capacity: usize, default_ttl: f64) -> PyResult<Self> {
        if capacity == 0 {
            return Err(CoreError::new_err("capacity must be at least 1"));
        }
        let default_ttl = check_ttl("default_ttl", default_ttl)?;
        Ok(Self { inner: Mutex::new(dedup::SeenCache::new(capacity, default_ttl)) })
    }

    #[pyo3(signature = (key, ttl = None, now = None))]
    fn check_and_insert(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        ttl: Option<f64>,
        now: Option<f64>,
    ) -> PyResult<bool> {
        let ttl = ttl.map(|t| check_ttl("ttl", t)).transpose()?;
        let now = match now {
            Some(n) if n.is_nan() => return Err(CoreError::new_err("now must be a number, got nan")),
            Some(n) => n,
            None => monotonic(py)?,
        };
        with_key(key, |key| lock(&self.inner).check_and_insert(key, ttl, now))
    }

    fn clear(&self) {
        lock(&self.inner).clear();
    }

    #[getter]
    fn capacity(&self) -> usize {
        lock(&self.inner).capacity()
    }

    #[getter]
    fn default_ttl(&self) -> f64 {
        lock(&self.inner).default_ttl()
    }

    fn __len__(&self) -> usize {
        lock(&self.inner).len()
    }

    fn __repr__(&self) -> String {
        let cache = lock(&self.inner);
        format!("SeenCache(capacity={}, default_ttl={}, len={})", cache.capacity(), cache.default_ttl(), cache.len())
    }
}

// --- Gate ---------------------------------------------------------------------

/// The check every inbound gossip message passes: verify, validate, dedup,
/// then the safeguards if it has them.
#[pyclass(frozen, name = "Gate", module = "bzzz._core")]
pub struct PyGate {
    limits: Limits,
    seen: Mutex<dedup::SeenCache>,
    keys: envelope::KeyCache,
    /// Locked after `seen` when both are held, never before.
    guards: Option<Mutex<Guards>>,
}

/// Steps 10 to 13 (`envelope::Gate`'s own), on state behind the gate's locks.
fn record(
    seen: &mut dedup::SeenCache,
    guards: Option<&mut Guards>,
    env: &Envelope,
    now_ms: u64,
) -> Result<(), Rejected> {
    envelope::record_seen(seen, env, now_ms)?;
    match guards {
        Some(guards) => guards.admit(env, now_ms),
        None => Ok(()),
    }
}

impl PyGate {
    /// Verify without the locks (the expensive part runs in parallel), then
    /// take them only for the dedup and safeguard steps. Runs without the GIL.
    fn admit_one(&self, data: &[u8], source_peer: Option<&[u8]>, now_ms: u64) -> Result<Envelope, Rejected> {
        let env = envelope::parse_and_verify_cached(data, &self.limits, now_ms, &self.keys)?;
        if let Some(source) = source_peer {
            envelope::check_source(&env, source)?;
        }
        let mut seen = lock(&self.seen);
        let mut guards = self.guards.as_ref().map(lock);
        record(&mut seen, guards.as_deref_mut(), &env, now_ms)?;
        Ok(env)
    }
}

#[pymethods]
impl PyGate {
    #[new]
    #[pyo3(signature = (limits = None, capacity = 100_000, safeguards = None))]
    fn new(limits: Option<&PyLimits>, capacity: usize, safeguards: Option<&PySafeguards>) -> PyResult<Self> {
        if capacity == 0 {
            return Err(CoreError::new_err("capacity must be at least 1"));
        }
        let limits = limits_or_default(limits);
        let gate = match safeguards {
            Some(s) => envelope::Gate::with_safeguards(limits, capacity, s.inner)
                .map_err(|e| CoreError::new_err(e.to_string()))?,
            None => envelope::Gate::new(limits, capacity),
        };
        Ok(Self {
            limits: gate.limits,
            seen: Mutex::new(gate.seen),
            keys: gate.keys,
            guards: gate.guards.map(Mutex::new),
        })
    }

    #[getter]
    fn limits(&self) -> PyLimits {
        PyLimits { inner: self.limits }
    }

    #[getter]
    fn safeguards(&self) -> Option<PySafeguards> {
        self.guards.as_ref().map(|g| PySafeguards { inner: *lock(g).safeguards() })
    }

    /// A discussion's state at `now_ms`, or None if the gate has no
    /// safeguards or does not remember the discussion.
    #[pyo3(signature = (key, now_ms = None))]
    fn discussion<'py>(&self, py: Python<'py>, key: &str, now_ms: Option<u64>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let now = now_ms.unwrap_or_else(envelope::now_ms);
        let Some(state) = self.guards.as_ref().and_then(|g| lock(g).discussion(key, now)) else {
            return Ok(None);
        };
        let dict = PyDict::new(py);
        dict.set_item("opened_ms", state.opened_ms)?;
        dict.set_item("closes_ms", state.closes_ms)?;
        dict.set_item("messages", state.messages)?;
        dict.set_item("participants", state.participants)?;
        dict.set_item("closed", state.closed)?;
        Ok(Some(dict))
    }

    #[getter]
    fn capacity(&self) -> usize {
        lock(&self.seen).capacity()
    }

    #[pyo3(signature = (data, now_ms = None, *, source_peer = None))]
    fn admit(
        &self,
        py: Python<'_>,
        data: &[u8],
        now_ms: Option<u64>,
        source_peer: Option<&[u8]>,
    ) -> PyResult<PyEnvelope> {
        let now = now_ms.unwrap_or_else(envelope::now_ms);
        let inner = py.allow_threads(|| self.admit_one(data, source_peer, now)).map_err(|e| rejected(py, e))?;
        Ok(PyEnvelope { inner })
    }

    #[pyo3(signature = (items, now_ms = None))]
    fn admit_batch<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        now_ms: Option<u64>,
    ) -> PyResult<Bound<'py, PyList>> {
        let now = now_ms.unwrap_or_else(envelope::now_ms);
        let items = crate::convert::bytes_items(items, "items")?;
        let slices: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
        let results: Vec<Result<Envelope, Rejected>> = py.allow_threads(|| {
            let verified = envelope::parse_and_verify_batch(&slices, &self.limits, now, &self.keys);
            let mut seen = lock(&self.seen);
            let mut guards = self.guards.as_ref().map(lock);
            verified
                .into_iter()
                .map(|result| result.and_then(|env| record(&mut seen, guards.as_deref_mut(), &env, now).map(|()| env)))
                .collect()
        });
        let out = PyList::empty(py);
        for result in results {
            match result {
                Ok(inner) => out.append(Bound::new(py, PyEnvelope { inner })?)?,
                Err(e) => out.append(rejected(py, e).into_value(py))?,
            }
        }
        Ok(out)
    }

    fn clear(&self) {
        let mut seen = lock(&self.seen);
        seen.clear();
        if let Some(guards) = &self.guards {
            lock(guards).clear();
        }
    }

    fn __len__(&self) -> usize {
        lock(&self.seen).len()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("REJECT_REASONS", PyTuple::new(m.py(), REJECT_REASONS)?)?;
    m.add_class::<PyLimits>()?;
    m.add_class::<PySafeguards>()?;
    m.add_class::<PyEnvelope>()?;
    m.add_class::<PySeenCache>()?;
    m.add_class::<PyGate>()?;
    m.add_function(wrap_pyfunction!(sign_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(verify_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(forward_envelope, m)?)?;
    m.add_function(wrap_pyfunction!(message_id, m)?)?;
    m.add_function(wrap_pyfunction!(peer_id, m)?)?;
    Ok(())
}
