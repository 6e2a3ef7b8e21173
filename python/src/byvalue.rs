//! The by-reference or by-value decision, with cloudpickle's rules: a function
//! or class travels by reference only when `module.qualname` imports back to
//! the very same object and its module is not registered for by-value.

use pyo3::exceptions::PyAttributeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::function_fields::FunctionFields;
use crate::{objects, registry, static_type_names};

/// For a function or a class: can the loading side import it by name?
pub(crate) fn by_reference(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(reference(obj)?.is_some())
}

/// The name by which a function or class travels by reference, if it does.
pub(crate) fn reference<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Reference<'py>>> {
    // A registered module's objects travel by value whether or not the
    // name leads back to them: asked first, it spares that lookup.
    reference_unless(obj, registry::is_registered)
}

/// `reference`, with the registry asked through `registered` (a dump asks
/// it once per module, not once per function of the module).
pub(crate) fn reference_unless<'py>(
    obj: &Bound<'py, PyAny>,
    registered: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<bool>,
) -> PyResult<Option<Reference<'py>>> {
    Ok(importable_module_unless(obj, None, registered)?.map(|(_, found)| found))
}

/// Where an object that imports back to itself was found.
pub(crate) struct Reference<'py> {
    /// The module's name: the object's own `__module__`, unless
    /// `module_searched`, when it was found by a search of `sys.modules`.
    pub(crate) module_name: Bound<'py, PyAny>,
    pub(crate) module_searched: bool,
    /// The dotted name that leads from the module to the object.
    pub(crate) qualname: Bound<'py, PyString>,
}

/// For a module: registered modules (and their submodules) travel by value,
/// and so do modules that are not in `sys.modules` (made at run time).
pub(crate) fn module_by_reference(module: &Bound<'_, PyAny>) -> PyResult<bool> {
    if registry::is_registered(module)? {
        return Ok(false);
    }
    let name = module.getattr(intern!(module.py(), "__name__"))?;
    objects::sys_modules(module.py()).contains(name)
}

/// The module from which `module.name` gives back `obj`, if there is one.
/// Everything defined in `__main__` counts as not importable: the loading
/// process has a `__main__` of its own.
pub(crate) fn importable_module<'py>(
    obj: &Bound<'py, PyAny>,
    name: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(importable_module_unless(obj, name, |_| Ok(false))?.map(|(module, _)| module))
}

/// `importable_module`, but None as soon as `refused` says yes to the
/// module, before the name is followed.
fn importable_module_unless<'py>(
    obj: &Bound<'py, PyAny>,
    name: Option<&Bound<'py, PyAny>>,
    refused: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<bool>,
) -> PyResult<Option<(Bound<'py, PyAny>, Reference<'py>)>> {
    let py = obj.py();
    let name = match name {
        Some(name) => name.clone(),
        None => match own_qualname(obj) {
            Some(name) => name,
            None => match optional_attr(obj, intern!(py, "__qualname__"))? {
                Some(name) => name,
                None => match optional_attr(obj, intern!(py, "__name__"))? {
                    Some(name) => name,
                    None => return Ok(None),
                },
            },
        },
    };
    let Ok(name) = name.cast_into::<PyString>() else {
        return Ok(None);
    };
    let Some((module_name, module_searched)) = which_module(obj, &name)? else {
        return Ok(None);
    };
    if module_name
        .cast::<PyString>()
        .is_ok_and(|s| s.to_str().is_ok_and(|s| s == "__main__"))
    {
        return Ok(None);
    }
    let Some(module) = objects::sys_modules(py).get_item(&module_name)? else {
        return Ok(None);
    };
    if refused(&module)? {
        return Ok(None);
    }
    match dotted_getattr(&module, &name)? {
        Some(found) if found.is(obj) => {
            let reference = Reference {
                module_name,
                module_searched,
                qualname: name,
            };
            Ok(Some((module, reference)))
        }
        _ => Ok(None),
    }
}

/// `__qualname__` where it can be had without `getattr`: a static type's
/// (kept per type) or a function's field, which is all the attribute
/// returns (`function` cannot be subclassed and its getter is a data
/// descriptor, so no instance dict can shadow it); ~0.2k a function.
fn own_qualname<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    match FunctionFields::of(obj) {
        Some(fields) => fields.read(|f| f.func_qualname),
        None => static_type_names::qualname_of(obj).map(Bound::into_any),
    }
}

/// `obj.__module__`, or else the first module in `sys.modules` that holds
/// `obj` under `name`; unlike `pickle.whichmodule`, None when none does.
/// True with the name when it was searched for.
fn which_module<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<(Bound<'py, PyAny>, bool)>> {
    let py = obj.py();
    if let Some(module_name) = static_type_names::module_of(obj) {
        return Ok(Some((module_name.into_any(), false)));
    }
    let module_name = match FunctionFields::of(obj) {
        Some(fields) => fields.read(|f| f.func_module),
        None => optional_attr(obj, intern!(py, "__module__"))?,
    };
    if let Some(module_name) = module_name
        && !module_name.is_none()
    {
        return Ok(Some((module_name, false)));
    }
    let snapshot = objects::sys_modules(py).copy()?;
    for (module_name, module) in snapshot.iter() {
        if skipped_in_search(&module_name, &module)? {
            continue;
        }
        // Any failure only means "not this module", as in cloudpickle.
        if let Ok(Some(found)) = dotted_getattr(&module, name)
            && found.is(obj)
        {
            return Ok(Some((module_name, true)));
        }
    }
    Ok(None)
}

fn skipped_in_search(name: &Bound<'_, PyAny>, module: &Bound<'_, PyAny>) -> PyResult<bool> {
    if module.is_none() || !module.is_instance(objects::module_type(module.py())?)? {
        return Ok(true);
    }
    let name = name.extract::<&str>().unwrap_or("");
    Ok(name == "__main__" || name == "__mp_main__")
}

/// `getattr` along a dotted path; None where a step is missing or is a
/// function's `<locals>`, which no import can reach.
fn dotted_getattr<'py>(root: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let dotted = name.to_str()?;
    // A name without dots is looked up as the str it is (a qualname, whose
    // hash is kept): a new str for it would be made and hashed on every dump.
    if !dotted.contains('.') {
        return if dotted == "<locals>" {
            Ok(None)
        } else {
            optional_attr(root, name)
        };
    }
    let mut current = root.clone();
    for part in dotted.split('.') {
        if part == "<locals>" {
            return Ok(None);
        }
        match optional_attr(&current, &PyString::new(root.py(), part))? {
            Some(next) => current = next,
            None => return Ok(None),
        }
    }
    Ok(Some(current))
}

/// `getattr(obj, name, None)` that keeps errors other than AttributeError.
pub(crate) fn optional_attr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Some(found) = module_attr(obj, name)? {
        return Ok(found);
    }
    match crate::class_attrs::getattr(obj, name) {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_instance_of::<PyAttributeError>(obj.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// For a plain module and a name that is not a dunder (neither `ModuleType`
/// nor `object` has such attributes), `getattr` is a lookup in the module's
/// dict, then its `__getattr__`: answered from the dict where that settles
/// it, without the AttributeError a miss raises (the by-value decision
/// looks up `<lambda>` and `<locals>` names in modules on every dump).
/// None when `getattr` itself must answer.
fn module_attr<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
    // SAFETY: an exact-type check on a live object.
    if unsafe { pyo3::ffi::PyModule_CheckExact(obj.as_ptr()) } == 0 || name.to_str()?.starts_with("__") {
        return Ok(None);
    }
    let namespace = obj.cast::<pyo3::types::PyModule>()?.dict();
    match namespace.get_item(name)? {
        Some(value) => Ok(Some(Some(value))),
        None if !namespace.contains(intern!(obj.py(), "__getattr__"))? => Ok(Some(None)),
        None => Ok(None),
    }
}

/// `member.__get__(obj)`, None when the slot is unset.
pub(crate) fn optional_attr_of_member<'py>(
    member: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match member.call_method1(intern!(obj.py(), "__get__"), (obj,)) {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_instance_of::<PyAttributeError>(obj.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{module, with_python};

    const SOURCE: &std::ffi::CStr = c"
def top():
    return 1
def make():
    def local():
        return 2
    return local
lam = lambda: 3
class Top:
    class Inner:
        pass
alias = top
def impostor():
    pass
impostor.__qualname__ = 'top'
";

    fn by_ref(m: &Bound<'_, PyAny>, expression: &str) -> bool {
        let namespace = m
            .getattr("__dict__")
            .unwrap()
            .cast_into::<pyo3::types::PyDict>()
            .unwrap();
        let code = std::ffi::CString::new(expression).unwrap();
        let obj = m.py().eval(&code, Some(&namespace), None).unwrap();
        by_reference(&obj).unwrap()
    }

    #[test]
    fn only_what_imports_back_to_itself_travels_by_reference() {
        with_python(|py| {
            let m = module(py, "fp_test_byvalue_rules", SOURCE);
            assert!(by_ref(&m, "top") && by_ref(&m, "Top") && by_ref(&m, "Top.Inner"));
            assert!(by_ref(&m, "alias"), "found under its own qualname");
            assert!(!by_ref(&m, "make()"), "a <locals> function");
            assert!(!by_ref(&m, "lam"), "its qualname is <lambda>");
            assert!(!by_ref(&m, "impostor"), "'top' names another object");
        });
    }

    #[test]
    fn main_and_registered_modules_travel_by_value() {
        with_python(|py| {
            let m = module(py, "fp_test_byvalue_registered", SOURCE);
            registry::register_pickle_by_value(&m).unwrap();
            let registered = (by_ref(&m, "top"), module_by_reference(&m));
            registry::unregister_pickle_by_value(&m).unwrap();
            assert!(!registered.0 && !registered.1.unwrap());
            assert!(by_ref(&m, "top") && module_by_reference(&m).unwrap());
            let main_function = py.eval(
                c"type(lambda: 0)((lambda: 0).__code__, {'__name__': '__main__'}, 'f')",
                None,
                None,
            );
            let main_function = main_function.unwrap();
            main_function.setattr("__qualname__", "f").unwrap();
            assert!(
                !by_reference(&main_function).unwrap(),
                "__main__ is never importable elsewhere"
            );
        });
    }

    #[test]
    fn modules_made_at_run_time_travel_by_value() {
        with_python(|py| {
            let made = objects::module_type(py)
                .unwrap()
                .call1(("fp_test_not_in_sys_modules",))
                .unwrap();
            assert!(!module_by_reference(&made).unwrap());
            assert!(module_by_reference(&py.import("json").unwrap()).unwrap());
        });
    }
}
