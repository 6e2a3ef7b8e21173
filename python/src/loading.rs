//! `loads` and `load`: pickle's own, called from Rust so that a call costs
//! no Python frame of ours, with a hint added when a module the pickle
//! names cannot be imported (see `flightpickle/_errors.py`).

use pyo3::exceptions::PyModuleNotFoundError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::objects;

/// ``pickle.loads``, with a hint when a module the pickle names is missing.
#[pyfunction]
#[pyo3(
    signature = (data, /, **options),
    text_signature = "(data, /, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())"
)]
pub(crate) fn loads<'py>(
    data: &Bound<'py, PyAny>,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    objects::pickle_loads(py)?
        .call((data,), options)
        .map_err(|err| with_hint(py, err))
}

/// ``pickle.load``, with a hint when a module the pickle names is missing.
#[pyfunction]
#[pyo3(
    signature = (file, **options),
    text_signature = "(file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())"
)]
pub(crate) fn load<'py>(file: &Bound<'py, PyAny>, options: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyAny>> {
    let py = file.py();
    objects::pickle_load(py)?
        .call((file,), options)
        .map_err(|err| with_hint(py, err))
}

/// A `ModuleNotFoundError` replaced by one that says what to do, caused by
/// the original; any other error as it is.
fn with_hint(py: Python<'_>, err: PyErr) -> PyErr {
    if !err.is_instance_of::<PyModuleNotFoundError>(py) {
        return err;
    }
    let hinted = py
        .import("flightpickle._errors")
        .and_then(|errors| errors.getattr("missing_module_error"))
        .and_then(|make| make.call1((err.value(py),)));
    match hinted {
        Ok(hinted) => {
            let hinted = PyErr::from_value(hinted);
            hinted.set_cause(py, Some(err));
            hinted
        }
        Err(_) => err,
    }
}
