//! Modules: importable ones by name, the others (made at run time, or
//! registered for by-value) with a copy of their namespace.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::call;
use crate::byvalue;
use crate::target;

#[pyfunction]
pub(crate) fn reduce_module<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if byvalue::module_by_reference(obj)? {
        return call(target::active(py)?.subimport.bind(py), (name,));
    }
    // `__builtins__` may hold anything a library put there; the loading side
    // restores its own.
    let namespace = obj.getattr(intern!(py, "__dict__"))?.cast_into::<PyDict>()?.copy()?;
    if namespace.contains(intern!(py, "__builtins__"))? {
        namespace.del_item(intern!(py, "__builtins__"))?;
    }
    call(target::active(py)?.dynamic_subimport.bind(py), (name, namespace))
}
