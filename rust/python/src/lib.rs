//! The only PyO3 glue: `bzzz._core`.
//!
//! Everything that converts between Rust and Python lives in this crate, so
//! `bzzz-core` stays plain Rust that `cargo test` runs without an interpreter.
//! Errors cross the boundary here and only here (see [`errors`]).

use pyo3::prelude::*;

mod convert;
mod dedup;
mod envelope;
mod errors;
mod gate;
mod log;
mod payload;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    log::register(m)?;
    envelope::register(m)?;
    dedup::register(m)?;
    gate::register(m)?;
    Ok(())
}
