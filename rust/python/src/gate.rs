//! Glue for the gate: `Safeguards` and `Gate`, a thin wrapper of the core's
//! `Gate`, which does every step and its own locking.
//!
//! `admit` and `admit_batch` run with the GIL released (their parsing and
//! signature checks are the expensive part); the other calls are short and
//! keep it. The gate's lock is never held while waiting for the GIL.

use bzzz_core::envelope::{self, Envelope, Rejected, Safeguards};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList};

use crate::convert::bytes_items;
use crate::envelope::{limits_or_default, PyEnvelope, PyLimits};
use crate::errors::{invalid_safeguards, rejected, CoreError};

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
        inner.check().map_err(invalid_safeguards)?;
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

// --- Gate ---------------------------------------------------------------------

/// The check every inbound gossip message passes: verify, validate, dedup,
/// then the safeguards if it has them.
#[pyclass(frozen, name = "Gate", module = "bzzz._core")]
pub struct PyGate {
    inner: envelope::Gate,
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
        let inner = match safeguards {
            Some(s) => envelope::Gate::with_safeguards(limits, capacity, s.inner).map_err(invalid_safeguards)?,
            None => envelope::Gate::new(limits, capacity),
        };
        Ok(Self { inner })
    }

    #[getter]
    fn limits(&self) -> PyLimits {
        PyLimits { inner: *self.inner.limits() }
    }

    #[getter]
    fn safeguards(&self) -> Option<PySafeguards> {
        self.inner.safeguards().map(|inner| PySafeguards { inner })
    }

    /// A discussion's state at `now_ms`, or None if the gate has no
    /// safeguards or does not remember the discussion.
    #[pyo3(signature = (key, now_ms = None))]
    fn discussion<'py>(&self, py: Python<'py>, key: &str, now_ms: Option<u64>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let now = now_ms.unwrap_or_else(envelope::now_ms);
        let Some(state) = self.inner.discussion(key, now) else {
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
        self.inner.capacity()
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
        let inner = py
            .allow_threads(|| match source_peer {
                Some(source) => self.inner.admit_from(data, source, now),
                None => self.inner.admit(data, now),
            })
            .map_err(|e| rejected(py, e))?;
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
        let items = bytes_items(items, "items")?;
        let slices: Vec<&[u8]> = items.iter().map(|b| b.as_bytes()).collect();
        let results: Vec<Result<Envelope, Rejected>> = py.allow_threads(|| self.inner.admit_batch(&slices, now));
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
        self.inner.clear();
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySafeguards>()?;
    m.add_class::<PyGate>()?;
    Ok(())
}
