//! An envelope's payload between Python values and JSON values.

use bzzz_core::envelope::{Map, Value, MAX_DEPTH};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::malformed;

/// A payload from Python: dict, list/tuple, str, int, bool, None. Floats and
/// integers outside i64/u64 are `malformed` (as on the wire); other types are a
/// TypeError. `depth` counts nesting as the envelope does (the envelope is 1).
pub fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
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

pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
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
