//! The modules whose functions and classes are pickled by value although
//! they are importable: a process-wide set of module names, as in cloudpickle.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PySet, PyString};

use crate::objects;

fn names(py: Python<'_>) -> PyResult<&Bound<'_, PySet>> {
    static CELL: PyOnceLock<Py<PySet>> = PyOnceLock::new();
    CELL.get_or_try_init(py, || PySet::empty(py).map(Bound::unbind))
        .map(|set| set.bind(py))
}

/// The messages are cloudpickle's, word for word: programs match on them.
fn require_module<'py>(module: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    if !module.is_instance(objects::module_type(module.py())?)? {
        let shown = module.str()?;
        return Err(PyValueError::new_err(format!(
            "Input should be a module object, got {shown} instead"
        )));
    }
    module
        .getattr(pyo3::intern!(module.py(), "__name__"))?
        .cast_into::<PyString>()
        .map_err(Into::into)
}

#[pyfunction]
pub(crate) fn register_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let name = require_module(module)?;
    if !objects::sys_modules(module.py()).contains(&name)? {
        return Err(PyValueError::new_err(format!(
            "{} was not imported correctly, have you used an `import` statement to access it?",
            module.str()?
        )));
    }
    names(module.py())?.add(name)
}

#[pyfunction]
pub(crate) fn unregister_pickle_by_value(module: &Bound<'_, PyAny>) -> PyResult<()> {
    let name = require_module(module)?;
    let registered = names(module.py())?;
    if !registered.contains(&name)? {
        return Err(PyValueError::new_err(format!(
            "{} is not registered for pickle by value",
            module.str()?
        )));
    }
    registered.discard(name).map(drop)
}

#[pyfunction]
pub(crate) fn list_registry_pickle_by_value(py: Python<'_>) -> PyResult<Bound<'_, PySet>> {
    PySet::new(py, names(py)?.iter())
}

/// Whether the module `name`, which has no parent package, was registered.
pub(crate) fn is_top_level_registered(py: Python<'_>, name: &Bound<'_, PyString>) -> PyResult<bool> {
    let registered = names(py)?;
    Ok(!registered.is_empty() && registered.contains(name)?)
}

/// Whether `module` or one of its parent packages was registered.
pub(crate) fn is_registered(module: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = module.py();
    let registered = names(py)?;
    if registered.is_empty() {
        return Ok(false);
    }
    let name = module.getattr(pyo3::intern!(py, "__name__"))?;
    let Ok(name) = name.cast::<PyString>() else {
        return Ok(false);
    };
    // The name itself first: its hash is cached, no string is made.
    if registered.contains(name)? {
        return Ok(true);
    }
    // Then each parent package, from the nearest: a new str each, so
    // the name itself is not asked again (a top-level module makes none).
    let mut prefix = name.to_str()?;
    while let Some(dot) = prefix.rfind('.') {
        prefix = &prefix[..dot];
        if registered.contains(prefix)? {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{module, with_python};

    #[test]
    fn registering_a_package_covers_its_submodules_only() {
        with_python(|py| {
            let package = module(py, "fp_test_registry_pkg", c"");
            let sub = module(py, "fp_test_registry_pkg.sub.deep", c"");
            let sibling = module(py, "fp_test_registry_pkg_sibling", c"");
            assert!(!is_registered(&sub).unwrap());
            register_pickle_by_value(&package).unwrap();
            let covered = (is_registered(&package), is_registered(&sub), is_registered(&sibling));
            unregister_pickle_by_value(&package).unwrap();
            assert_eq!(
                (covered.0.unwrap(), covered.1.unwrap(), covered.2.unwrap()),
                (true, true, false)
            );
            assert!(!is_registered(&sub).unwrap());
        });
    }

    #[test]
    fn registering_needs_an_imported_module() {
        with_python(|py| {
            let unlisted = objects::module_type(py).unwrap().call1(("fp_test_unlisted",)).unwrap();
            let error = register_pickle_by_value(&unlisted).unwrap_err();
            assert!(error.to_string().contains("was not imported correctly"), "{error}");
            let error = unregister_pickle_by_value(&unlisted).unwrap_err();
            assert!(
                error.to_string().contains("is not registered for pickle by value"),
                "{error}"
            );
            let not_a_module = 5i32.into_pyobject(py).unwrap().into_any();
            let error = register_pickle_by_value(&not_a_module).unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("Input should be a module object, got 5 instead")
            );
        });
    }
}
