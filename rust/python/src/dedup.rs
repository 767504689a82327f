//! Glue for the dedup cache: `SeenCache`.
//!
//! The cache keeps its state behind a `Mutex`, so one instance may be shared
//! by threads; calls are short and keep the GIL, and the lock is never held
//! while waiting for it.

use std::sync::{Mutex, MutexGuard};

use bzzz_core::dedup;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyString};

use crate::errors::CoreError;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in the guarded code can panic half-way through an update that
    // matters, so a poisoned lock still holds a consistent value.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySeenCache>()
}
