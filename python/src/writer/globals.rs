//! Finding the importable name of an object written as a global, with the
//! C pickler's checks and messages: the module is found through
//! `__module__` (or a search of `sys.modules`), the dotted name must lead
//! back to the very object.
//!
//! The check imports nothing when the module is already in `sys.modules`,
//! and the names of the wire targets' reconstructors, once checked, are
//! remembered for the process: their modules are ours or stock
//! cloudpickle's, and nothing rebinds them.

use std::sync::Mutex;

use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::quick_hash::QuickMap;
use crate::{objects, static_type_names};

/// Where a global is found: `module_name` imports to `module`, in which
/// `qualname` leads to the object; `parent` holds it under `last_name`.
pub(crate) struct GlobalName<'py> {
    pub(crate) module_name: Bound<'py, PyString>,
    pub(crate) qualname: Bound<'py, PyString>,
    pub(crate) parent: Option<Bound<'py, PyAny>>,
    pub(crate) last_name: Option<Bound<'py, PyString>>,
}

/// Modules whose functions are the reconstructors of the wire targets.
const TRUSTED_MODULES: [&str; 3] = [
    crate::reconstruct::HOME,
    "cloudpickle.cloudpickle",
    "pyspark.cloudpickle.cloudpickle",
];

/// Checked reconstructor names: (object, module name, qualname), by address;
/// the object is held, so its address is never reused.
type Trusted = QuickMap<usize, (Py<PyAny>, Py<PyString>, Py<PyString>)>;
static TRUSTED: Mutex<Option<Trusted>> = Mutex::new(None);

/// The name under which `obj` is importable, or the C pickler's
/// `PicklingError` saying why it is not. `name` overrides the qualname
/// (a `__reduce__` that returned a string).
pub(crate) fn resolve<'py>(obj: &Bound<'py, PyAny>, name: Option<&Bound<'py, PyString>>) -> PyResult<GlobalName<'py>> {
    let py = obj.py();
    if name.is_none()
        && let Some(found) = trusted(obj)
    {
        return Ok(found);
    }
    let qualname = match name {
        Some(name) => name.clone(),
        None => qualname_of(obj)?,
    };
    let dotted = qualname.to_str()?;
    if dotted.split('.').any(|part| part == "<locals>") {
        return Err(error(py, format!("Can't pickle local object {}", obj.repr()?)));
    }
    let module_name = which_module(obj, &qualname, dotted)?;
    let module = match import(&module_name) {
        Ok(module) => module,
        Err(cause) => {
            let message = format!(
                "Can't pickle {}: import of module {} failed",
                obj.repr()?,
                module_name.repr()?
            );
            let err = error(py, message);
            err.set_cause(py, Some(cause));
            return Err(err);
        }
    };
    let (found, parent, last_name) =
        deep_getattr(&module, &qualname, dotted).map_err(|_| match (obj.repr(), qualname.repr(), module.repr()) {
            (Ok(o), Ok(q), Ok(m)) => error(py, format!("Can't pickle {o}: attribute lookup {q} on {m} failed")),
            (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => e,
        })?;
    if !found.is(obj) {
        return Err(error(
            py,
            format!(
                "Can't pickle {}: it's not the same object as {}.{}",
                obj.repr()?,
                module_name.to_str()?,
                dotted
            ),
        ));
    }
    let parent_is_module = parent.is(&module);
    let global = GlobalName {
        module_name,
        qualname,
        parent: (!parent_is_module).then_some(parent),
        last_name: (!parent_is_module).then_some(last_name),
    };
    remember_if_trusted(obj, &global);
    Ok(global)
}

/// `copyreg`'s extension code for the global, if one is registered.
pub(crate) fn extension_code(global: &GlobalName<'_>) -> PyResult<Option<i64>> {
    let py = global.module_name.py();
    let registry = objects::copyreg_extension_registry(py)?.cast::<PyDict>()?;
    if registry.is_empty() {
        return Ok(None);
    }
    let key = PyTuple::new(py, [global.module_name.as_any(), global.qualname.as_any()])?;
    registry.get_item(key)?.map(|code| code.extract()).transpose()
}

/// `(module, name)` as protocols 0 to 2 name it with `fix_imports`: the
/// Python 2 names of modules and objects that were renamed in Python 3.
pub(crate) fn python2_names<'py>(
    module_name: &Bound<'py, PyString>,
    name: &Bound<'py, PyString>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let py = module_name.py();
    let key = PyTuple::new(py, [module_name.as_any(), name.as_any()])?;
    if let Some(mapped) = objects::reverse_name_mapping(py)?.cast::<PyDict>()?.get_item(&key)? {
        let mapped = mapped.cast_into::<PyTuple>()?;
        return Ok((mapped.get_item(0)?, mapped.get_item(1)?));
    }
    match objects::reverse_import_mapping(py)?
        .cast::<PyDict>()?
        .get_item(module_name)?
    {
        Some(module) => Ok((module, name.clone().into_any())),
        None => Ok((module_name.clone().into_any(), name.clone().into_any())),
    }
}

/// The checked name of a reconstructor (see the module's comment).
pub(crate) fn trusted<'py>(obj: &Bound<'py, PyAny>) -> Option<GlobalName<'py>> {
    let py = obj.py();
    let cache = TRUSTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (_, module_name, qualname) = cache.as_ref()?.get(&(obj.as_ptr() as usize))?;
    Some(GlobalName {
        module_name: module_name.bind(py).clone(),
        qualname: qualname.bind(py).clone(),
        parent: None,
        last_name: None,
    })
}

fn remember_if_trusted(obj: &Bound<'_, PyAny>, global: &GlobalName<'_>) {
    let trusted_module = global
        .module_name
        .to_str()
        .is_ok_and(|name| TRUSTED_MODULES.contains(&name));
    if !trusted_module || global.parent.is_some() {
        return;
    }
    let mut cache = TRUSTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.get_or_insert_with(Trusted::default).insert(
        obj.as_ptr() as usize,
        (
            obj.clone().unbind(),
            global.module_name.clone().unbind(),
            global.qualname.clone().unbind(),
        ),
    );
}

/// `__qualname__`, else `__name__`, as a str.
fn qualname_of<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    if let Some(name) = static_type_names::qualname_of(obj) {
        return Ok(name);
    }
    let name = match obj.getattr(intern!(py, "__qualname__")) {
        Ok(name) => name,
        Err(err) if err.is_instance_of::<PyAttributeError>(py) => obj.getattr(intern!(py, "__name__"))?,
        Err(err) => return Err(err),
    };
    Ok(name.cast_into::<PyString>()?)
}

/// `obj.__module__`, else the module in `sys.modules` that holds `obj`
/// under `dotted`, else `__main__` (as `pickle.whichmodule`).
fn which_module<'py>(
    obj: &Bound<'py, PyAny>,
    qualname: &Bound<'py, PyString>,
    dotted: &str,
) -> PyResult<Bound<'py, PyString>> {
    let py = obj.py();
    if let Some(module_name) = static_type_names::module_of(obj) {
        return Ok(module_name);
    }
    if let Some(module_name) = crate::byvalue::optional_attr(obj, intern!(py, "__module__"))?
        && !module_name.is_none()
    {
        return Ok(module_name.cast_into::<PyString>()?);
    }
    let snapshot = objects::sys_modules(py).copy()?;
    for (module_name, module) in snapshot.iter() {
        let name = module_name.extract::<&str>().unwrap_or("");
        if module.is_none() || name == "__main__" || name == "__mp_main__" {
            continue;
        }
        if let Ok((found, ..)) = deep_getattr(&module, qualname, dotted)
            && found.is(obj)
        {
            return Ok(module_name.cast_into::<PyString>()?);
        }
    }
    Ok(PyString::new(py, "__main__"))
}

/// `sys.modules[name]`, importing it only when it is not there.
fn import<'py>(name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    if let Some(module) = objects::sys_modules(py).get_item(name)?
        && !module.is_none()
    {
        return Ok(module);
    }
    // SAFETY: `name` is a live str; PyImport_Import returns a new reference or null.
    unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyImport_Import(name.as_ptr())) }
}

/// The object at `dotted` under `root`, its parent, and its last name.
fn deep_getattr<'py>(
    root: &Bound<'py, PyAny>,
    qualname: &Bound<'py, PyString>,
    dotted: &str,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyString>)> {
    if !dotted.contains('.') {
        return Ok((root.getattr(qualname)?, root.clone(), qualname.clone()));
    }
    let py = root.py();
    let mut parent = root.clone();
    let mut current = root.clone();
    let mut last = qualname.clone();
    for part in dotted.split('.') {
        last = PyString::new(py, part);
        parent = current;
        current = parent.getattr(&last)?;
    }
    Ok((current, parent, last))
}

fn error(py: Python<'_>, message: String) -> PyErr {
    objects::new_pickling_error(py, message)
}
