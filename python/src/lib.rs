//! `flightpickle._native`: the Rust half of the `flightpickle` Python package.
//!
//! `pickler` and `dispatch` are what `flightpickle.Pickler` is made of,
//! `reducers` turn objects into reduce tuples, `reconstruct` rebuilds them
//! at load time (bound as `flightpickle._<name>`, and in
//! `flightpickle._reconstruct` for older pickles: a wire format).
//! `writer` writes whole pickles natively for module-level `dumps`/`dump`,
//! `dumping` and `loading` are the module-level `dumps`/`dump` and `loads`/`load`.
//! `sealing` and `inspection` bind the core's envelope and pickle reader,
//! `transport` the executor protocol's sockets and `flight` its Arrow Flight front.

use pyo3::prelude::*;

mod arguments;
mod batch_handoff;
mod byvalue;
mod class_attrs;
mod code_body;
// Shared with the inspector, which reads code bodies (see `code_body`).
use flightpickle_core::pickle::leb128;
mod code_cache;
mod code_globals;
mod cpython;
mod dispatch;
mod dumping;
mod explain;
mod fingerprint;
mod flat_export;
mod flight;
mod function_fields;
mod inspection;
mod loading;
mod name_blob;
mod objects;
mod pickler;
mod pickler_dump;
mod quick_hash;
mod reconstruct;
mod reducers;
mod registry;
mod sealing;
mod stable;
mod static_type_names;
mod target;
#[cfg(test)]
mod testing;
mod tracker;
mod transport;
mod version;
mod writer;

/// The version of the Rust core this extension was built from.
#[pyfunction]
fn core_version() -> &'static str {
    flightpickle_core::VERSION
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Whether python/build_extension.sh built this with a profile: the
    // benchmarks print it, as their numbers depend on it.
    m.add("PROFILE_GUIDED", cfg!(flightpickle_profile_guided))?;
    m.add_function(wrap_pyfunction!(core_version, m)?)?;
    m.add_function(wrap_pyfunction!(registry::register_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(registry::unregister_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(registry::list_registry_pickle_by_value, m)?)?;
    m.add_function(wrap_pyfunction!(target::set_default_target, m)?)?;
    m.add_function(wrap_pyfunction!(target::get_default_target, m)?)?;
    m.add_function(wrap_pyfunction!(pickler::enter_dump, m)?)?;
    m.add_function(wrap_pyfunction!(pickler::leave_dump, m)?)?;
    m.add_function(wrap_pyfunction!(pickler_dump::dump_natively, m)?)?;
    m.add_function(wrap_pyfunction!(pickler_dump::hand_memo_over, m)?)?;
    m.add_function(wrap_pyfunction!(pickler_dump::memo_reset, m)?)?;
    m.add_function(wrap_pyfunction!(writer::fast_dump, m)?)?;
    dumping::add_to(m)?;
    m.add_function(wrap_pyfunction!(dumping::use_package_namespace, m)?)?;
    loading::add_to(m)?;
    m.add_function(wrap_pyfunction!(writer::use_pickler_class, m)?)?;
    m.add_function(wrap_pyfunction!(writer::set_native_default_reduce, m)?)?;
    m.add_function(wrap_pyfunction!(writer::set_own_reduce_calls, m)?)?;
    m.add("FastPathDeclined", m.py().get_type::<writer::FastPathDeclined>())?;
    m.add_class::<pickler::PicklerState>()?;
    m.add_class::<pickler::ReducerOverride>()?;
    m.add_class::<dispatch::DispatchTable>()?;
    m.add("REDUCERS", reducers::table(m)?)?;
    m.add("_reconstruct", reconstruct::module(m.py())?)?;
    m.add_function(wrap_pyfunction!(reconstruct::loaded_code::forget, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct::loaded_code::count, m)?)?;
    m.add_function(wrap_pyfunction!(tracker::forget_loads, m)?)?;
    m.add_function(wrap_pyfunction!(sealing::seal_pickle, m)?)?;
    m.add_function(wrap_pyfunction!(sealing::open_frame, m)?)?;
    m.add_function(wrap_pyfunction!(sealing::read_header, m)?)?;
    m.add(
        "ENVELOPE_MAGIC",
        pyo3::types::PyBytes::new(m.py(), &flightpickle_core::envelope::MAGIC),
    )?;
    m.add("EnvelopeRefusal", m.py().get_type::<sealing::EnvelopeRefusal>())?;
    m.add_function(wrap_pyfunction!(inspection::inspect_pickle, m)?)?;
    m.add_function(wrap_pyfunction!(explain::captured_globals, m)?)?;
    m.add_function(wrap_pyfunction!(explain::travels_by_value, m)?)?;
    m.add_class::<transport::Listener>()?;
    m.add_class::<transport::Connection>()?;
    m.add("TransportError", m.py().get_type::<transport::TransportError>())?;
    m.add_class::<flight::FlightFront>()?;
    Ok(())
}
