//! What the unit tests that need Python share: an interpreter, and modules
//! made from source.

use std::ffi::CStr;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::objects;

/// Runs `f` attached to the interpreter, which starts on first use (tests
/// run in threads of one process, so they share it).
pub(crate) fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::initialize();
    Python::attach(f)
}

/// A module named `name`, importable (in `sys.modules`), made by `source`.
/// Each test uses its own name: the registry and `sys.modules` are shared.
pub(crate) fn module<'py>(py: Python<'py>, name: &str, source: &CStr) -> Bound<'py, PyAny> {
    let module = objects::module_type(py).unwrap().call1((name,)).unwrap();
    let namespace = module.getattr("__dict__").unwrap().cast_into::<PyDict>().unwrap();
    py.run(source, Some(&namespace), None).unwrap();
    objects::sys_modules(py).set_item(name, &module).unwrap();
    module
}
