//! Conversions shared by the glue modules.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Every item of a Python iterable as `bytes` (kept alive, so their slices can
/// be used with the GIL released); `TypeError` naming `what` otherwise.
pub fn bytes_items<'py>(iterable: &Bound<'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyBytes>>> {
    iterable
        .try_iter()?
        .map(|item| {
            item?
                .downcast_into::<PyBytes>()
                .map_err(|e| PyTypeError::new_err(format!("{what} must be bytes, got {}", e.into_inner().get_type())))
        })
        .collect()
}
