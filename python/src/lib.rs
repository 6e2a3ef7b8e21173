//! `flightpickle._native`: the Rust half of the `flightpickle` Python package.
//!
//! `pickler` and `dispatch` are what `flightpickle.Pickler` is made of,
//! `reducers` turn objects into reduce tuples, `reconstruct` rebuilds them
//! at load time (exposed as `flightpickle._reconstruct`, a wire format).

use pyo3::prelude::*;

mod byvalue;
mod code_globals;
mod dispatch;
mod objects;
mod pickler;
mod reconstruct;
mod reducers;
mod registry;
#[cfg(test)]
mod testing;
mod tracker;
mod version;

/// The version of the Rust core this extension was built from.
#[pyfunction]
fn core_version() -> &'static str {
    flightpickle_core::VERSION
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(registry::register_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(registry::unregister_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(registry::list_registry_pickle_by_value, m)?)?;
    m.add_class::<pickler::PicklerState>()?;
    m.add_class::<pickler::ReducerOverride>()?;
    m.add_class::<dispatch::DispatchTable>()?;
    m.add("REDUCERS", reducers::table(m)?)?;
    m.add("_reconstruct", reconstruct::module(m.py())?)?;
    Ok(())
}
