//! `flightpickle._native`: the Rust half of the `flightpickle` Python package.

use pyo3::prelude::*;

/// The version of the Rust core this extension was built from.
#[pyfunction]
fn core_version() -> &'static str {
    flightpickle_core::VERSION
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    Ok(())
}
