//! The pickler's own decisions, for `flightpickle.explain`: which globals a
//! function ships and whether an object travels by value. Explaining with the
//! same code that pickles keeps the explanation true.

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFunction, PyModule, PyType};

use crate::{byvalue, code_globals};

/// `{name: value}` of the globals that `func`'s code (nested code included) uses.
#[pyfunction]
pub(crate) fn captured_globals<'py>(func: &Bound<'py, PyFunction>) -> PyResult<Bound<'py, PyDict>> {
    let py = func.py();
    let code = func.getattr(intern!(py, "__code__"))?;
    let globals = func.getattr(intern!(py, "__globals__"))?.cast_into::<PyDict>()?;
    code_globals::used_globals(&code, &globals)
}

/// Whether a function, class or module is pickled by value.
#[pyfunction]
pub(crate) fn travels_by_value(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    if obj.is_instance_of::<PyModule>() {
        Ok(!byvalue::module_by_reference(obj)?)
    } else if obj.is_instance_of::<PyFunction>() || obj.is_instance_of::<PyType>() {
        Ok(!byvalue::by_reference(obj)?)
    } else {
        Err(PyTypeError::new_err(format!(
            "only functions, classes and modules travel by value or by reference, not {}",
            obj.get_type().name()?
        )))
    }
}
