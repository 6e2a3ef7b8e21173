//! Classes. Importable ones travel by reference (`NotImplemented` lets the
//! C pickler write the global); the few builtin types without an importable
//! name get a small call; the rest, by value: a skeleton made by the
//! metaclass, then the class body as state. Enums get their members up
//! front, because the enum metaclass must see them when it makes the class.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::{call, call_then_set};
use crate::pickler::PicklerState;
use crate::target::Target;
use crate::{byvalue, objects, registry, tracker, version};

/// Enum bookkeeping that the enum metaclass rebuilds from the members.
const ENUM_INTERNALS: [&str; 5] = [
    "_generate_next_value_",
    "_member_names_",
    "_member_map_",
    "_member_type_",
    "_value2member_map_",
];

/// ABC caches: they describe the pickling process, not the class.
const ABC_CACHES: [&str; 3] = ["_abc_cache", "_abc_negative_cache", "_abc_negative_cache_version"];

pub(crate) fn reduce<'py>(pickler: &PicklerState, class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let names = pickler.reconstructors();
    if let Some(singleton) = singleton_of(class)? {
        return call(py.get_type::<PyType>().as_any(), (singleton,));
    }
    if let Some(name) = builtin_type_names(py)?.get_item(class)? {
        return call(names.builtin_type.bind(py), (name,));
    }
    if builtin_by_name(class)? || byvalue::by_reference(class)? {
        return Ok(py.NotImplemented().into_bound(py));
    }
    if class.cast::<PyType>()?.is_subclass(objects::enum_type(py)?)? {
        let state = enum_state(pickler, class)?;
        call_then_set(
            names.make_skeleton_enum.bind(py),
            enum_args(class)?,
            state,
            names.class_setstate.bind(py),
        )
    } else {
        let native = names.target == Target::Native;
        let body = stable_body(pickler, class_body(class)?)?;
        let args = class_args(class, native)?;
        let make = names.make_skeleton_class.bind(py);
        if native && fills_by_build(class, &body)? {
            // BUILD sets the body attribute by attribute, as class_setstate
            // would, with no name for the loader to find.
            let state = PyTuple::new(py, [py.None().into_bound(py), body.into_any()])?;
            return Ok(PyTuple::new(py, [make.clone(), args, state.into_any()])?.into_any());
        }
        let state = PyTuple::new(py, [body.into_any(), PyDict::new(py).into_any()])?.into_any();
        call_then_set(make, args, state, names.class_setstate.bind(py))
    }
}

/// Whether the C unpickler's BUILD, given `(None, body)`, fills the
/// skeleton as `class_setstate` would: it sets each item with `setattr`
/// unless the object has a `__setstate__`, which a skeleton made by `type`
/// could only inherit from a base (checked on the class's whole MRO, which
/// holds more than the skeleton's). The ABC registry and `__firstlineno__`
/// need `class_setstate`.
fn fills_by_build(class: &Bound<'_, PyAny>, body: &Bound<'_, PyDict>) -> PyResult<bool> {
    let py = class.py();
    if !class.get_type().is(py.get_type::<PyType>())
        || body.contains(intern!(py, "_abc_impl"))?
        || body.contains(intern!(py, "__firstlineno__"))?
    {
        return Ok(false);
    }
    for base in class.getattr(intern!(py, "__mro__"))?.cast_into::<PyTuple>()?.iter() {
        if own_dict(&base)?.contains(intern!(py, "__setstate__"))? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `type(None)`, `type(...)`, `type(NotImplemented)`: rebuilt as `type(x)`.
fn singleton_of<'py>(class: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = class.py();
    let candidates = [
        py.None().into_bound(py),
        py.Ellipsis().into_bound(py),
        py.NotImplemented().into_bound(py),
    ];
    Ok(candidates.into_iter().find(|value| value.get_type().is(class)))
}

/// A static type that `builtins` holds under its own name (`object`,
/// `type`, `property`, `classmethod`...), while `builtins` is not registered
/// for pickling by value: by reference, decided without the name lookups of
/// `byvalue::by_reference`, which every class body pays several times over
/// for the types of its descriptors and its metaclass and bases.
fn builtin_by_name(class: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = class.py();
    let Ok(class) = class.cast::<PyType>() else {
        return Ok(false);
    };
    // SAFETY: the flags and name of a live type object; a static type's
    // `tp_name` is a NUL-terminated string that lives as long as the type.
    let name = unsafe {
        let flags = ffi::PyType_GetFlags(class.as_type_ptr());
        if flags & ffi::Py_TPFLAGS_HEAPTYPE != 0 {
            return Ok(false);
        }
        CStr::from_ptr((*class.as_type_ptr()).tp_name)
    };
    // Static types outside `builtins` are named "module.name".
    let Ok(name) = name.to_str() else { return Ok(false) };
    if name.contains('.') || registry::is_top_level_registered(py, "builtins")? {
        return Ok(false);
    }
    Ok(objects::builtins_dict(py)?
        .cast::<PyDict>()?
        .get_item(name)?
        .is_some_and(|found| found.is(class)))
}

/// `{cls: name}` for the classes of the `types` module (code, cell, method
/// types...), which have no importable name of their own.
fn builtin_type_names(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static CELL: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let names = CELL.get_or_try_init(py, || {
        let names = PyDict::new(py);
        for (name, value) in py.import("types")?.dict().iter() {
            if value.get_type().is(py.get_type::<PyType>()) {
                names.set_item(value, name)?;
            }
        }
        Ok::<_, PyErr>(names.unbind())
    })?;
    Ok(names.bind(py))
}

/// `(metaclass, name, bases, type_kwargs, tracker_id, None)`; `dense` (the
/// native target) writes None for the metaclass `type` and no bases for
/// `(object,)`, which the loader takes for those: two names fewer to find.
fn class_args<'py>(class: &Bound<'py, PyAny>, dense: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let own = own_dict(class)?;
    let type_kwargs = PyDict::new(py);
    if own.contains(intern!(py, "__module__"))? {
        type_kwargs.set_item(intern!(py, "__module__"), class.getattr(intern!(py, "__module__"))?)?;
    }
    // Beyond cloudpickle, which sets these after creation, where they no
    // longer take effect: the qualname is kept (reprs, dataclasses) and slot
    // classes come back with slots, not with a `__dict__` per instance.
    type_kwargs.set_item(intern!(py, "__qualname__"), class.getattr(intern!(py, "__qualname__"))?)?;
    // Classes made through `__mro_entries__` (NamedTuple, TypedDict) are
    // rebuilt by a metaclass that sets `__slots__` itself and refuses ours.
    if !own.contains(intern!(py, "__orig_bases__"))?
        && let Some(slots) = own.get_item(intern!(py, "__slots__"))?
    {
        type_kwargs.set_item(intern!(py, "__slots__"), slots)?;
    }
    if let Some(dict_attr) = own.get_item(intern!(py, "__dict__"))?
        && dict_attr.is_exact_instance(objects::property_type(py)?.cast::<PyType>()?)
    {
        type_kwargs.set_item(intern!(py, "__dict__"), dict_attr)?;
    }
    let mut metaclass = class.get_type().into_any();
    let mut bases = bases(class, &own)?;
    if dense {
        if metaclass.is(py.get_type::<PyType>()) {
            metaclass = py.None().into_bound(py);
        }
        if only_object(&bases) {
            bases = PyTuple::empty(py).into_any();
        }
    }
    let items = [
        metaclass,
        class.getattr(intern!(py, "__name__"))?,
        bases,
        type_kwargs.into_any(),
        tracker::id_of(class)?.into_any(),
        py.None().into_bound(py),
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

/// Whether `bases` is `(object,)`.
fn only_object(bases: &Bound<'_, PyAny>) -> bool {
    let object = bases.py().get_type::<PyAny>();
    bases
        .cast::<PyTuple>()
        .is_ok_and(|bases| bases.len() == 1 && bases.get_item(0).is_ok_and(|base| base.is(&object)))
}

/// `__orig_bases__` when the class itself has one (generic classes), so
/// that `Generic[T]` bases come back as written.
fn bases<'py>(class: &Bound<'py, PyAny>, own: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    match own.get_item(intern!(py, "__orig_bases__"))? {
        Some(_) => class.getattr(intern!(py, "__orig_bases__")),
        None => class.getattr(intern!(py, "__bases__")),
    }
}

/// `(bases, name, qualname, {member: value}, module, tracker_id, None)`.
fn enum_args<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let items = [
        class.getattr(intern!(py, "__bases__"))?,
        class.getattr(intern!(py, "__name__"))?,
        class.getattr(intern!(py, "__qualname__"))?,
        enum_members(class)?.into_any(),
        class.getattr(intern!(py, "__module__"))?,
        tracker::id_of(class)?.into_any(),
        py.None().into_bound(py),
    ];
    Ok(PyTuple::new(py, items)?.into_any())
}

fn enum_members<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = class.py();
    let members = PyDict::new(py);
    for member in class.try_iter()? {
        let member = member?;
        members.set_item(
            member.getattr(intern!(py, "name"))?,
            member.getattr(intern!(py, "value"))?,
        )?;
    }
    Ok(members)
}

fn enum_state<'py>(pickler: &PicklerState, class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let body = class_body(class)?;
    for name in ENUM_INTERNALS {
        discard(&body, name)?;
    }
    for member in enum_members(class)?.keys() {
        discard(&body, &member)?;
    }
    state_pair(pickler, body)
}

/// `(body, {})`, with the body's sets of strings written in sorted order.
fn state_pair<'py>(pickler: &PicklerState, body: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    let py = body.py();
    let body = stable_body(pickler, body)?;
    Ok(PyTuple::new(py, [body.into_any(), PyDict::new(py).into_any()])?.into_any())
}

/// The body, its sets of strings replaced by stand-ins written in sorted order.
fn stable_body<'py>(pickler: &PicklerState, body: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyDict>> {
    for (key, value) in body.iter() {
        body.set_item(key, pickler.stable(&value)?)?;
    }
    Ok(body)
}

/// The class's own namespace, minus what its bases provide, what Python
/// recreates, and the slot descriptors that `__slots__` makes again.
fn class_body<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = class.py();
    let body = own_namespace(class)?;
    discard(&body, "__weakref__")?;
    if class.get_type().is_subclass(objects::abc_meta(py)?.cast::<PyType>()?)? {
        replace_abc_registry(class, &body)?;
    }
    if body.contains(intern!(py, "__slots__"))? {
        let slots = class.getattr(intern!(py, "__slots__"))?;
        if slots.is_instance_of::<PyString>() {
            discard(&body, &slots)?;
        } else {
            for slot in slots.try_iter()? {
                discard(&body, &slot?)?;
            }
        }
    }
    discard(&body, "__dict__")?;
    for name in version::recreated_class_attrs(py) {
        discard(&body, *name)?;
    }
    Ok(body)
}

/// A sorted copy of `class.__dict__` without the entries that are the very
/// objects a base provides under the same name.
fn own_namespace<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = class.py();
    let own = own_dict(class)?;
    let keys = own.keys();
    keys.sort()?;
    let bases = class.getattr(intern!(py, "__bases__"))?.cast_into::<PyTuple>()?;
    let base_dicts = bases.iter().map(|base| own_dict(&base)).collect::<PyResult<Vec<_>>>()?;
    let body = PyDict::new(py);
    for key in keys.iter() {
        let Some(value) = own.get_item(&key)? else { continue };
        if inherited(&base_dicts, &key)?.is_some_and(|base_value| base_value.is(&value)) {
            continue;
        }
        body.set_item(super::function::fresh_str(&key)?, value)?;
    }
    Ok(body)
}

/// What the bases provide under `key`: the first base's entry that has one
/// (the merge of their own dicts, the last base first).
fn inherited<'py>(base_dicts: &[Bound<'py, PyDict>], key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    for own in base_dicts {
        if let Some(value) = own.get_item(key)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// `_abc_impl` becomes the list of registered virtual subclasses, which
/// the loading side registers again; the caches are dropped.
fn replace_abc_registry<'py>(class: &Bound<'py, PyAny>, body: &Bound<'py, PyDict>) -> PyResult<()> {
    let py = class.py();
    for name in ABC_CACHES {
        discard(body, name)?;
    }
    discard(body, "_abc_impl")?;
    let dump = objects::abc_get_dump(py)?.call1((class,))?;
    let registry = dump.get_item(0)?;
    let subclasses = PyList::empty(py);
    for weak in registry.try_iter()? {
        let subclass = weak?.call0()?;
        if !subclass.is_none() {
            subclasses.append(subclass)?;
        }
    }
    body.set_item(intern!(py, "_abc_impl"), subclasses)
}

/// The class's own namespace, to read: the dict behind `cls.__dict__` (a
/// mappingproxy), or a copy where the type keeps none of its own.
fn own_dict<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    if let Ok(class) = class.cast::<PyType>() {
        // SAFETY: a live type object; `tp_dict`, when set, is a dict it owns.
        let namespace = unsafe { (*class.as_type_ptr()).tp_dict };
        if !namespace.is_null() {
            // SAFETY: a borrowed reference to a dict, made strong at once.
            return Ok(unsafe { Bound::from_borrowed_ptr(class.py(), namespace).cast_into_unchecked() });
        }
    }
    objects::dict_copy(&class.getattr(intern!(class.py(), "__dict__"))?)
}

fn discard<'py, K: IntoPyObject<'py> + Copy>(dict: &Bound<'py, PyDict>, key: K) -> PyResult<()>
where
    PyErr: From<K::Error>,
{
    if dict.contains(key)? {
        dict.del_item(key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{module, with_python};

    fn builtin_by_name_of(py: Python<'_>, expression: &std::ffi::CStr) -> bool {
        let scope = PyDict::new(py);
        py.run(c"import collections, types", Some(&scope), None).unwrap();
        builtin_by_name(&py.eval(expression, Some(&scope), None).unwrap()).unwrap()
    }

    #[test]
    fn only_static_types_that_builtins_names_skip_the_by_value_decision() {
        with_python(|py| {
            for named in [c"object", c"type", c"property", c"classmethod", c"int"] {
                assert!(builtin_by_name_of(py, named), "{named:?}");
            }
            // `function` is not a name in builtins; OrderedDict lives in a
            // module; a class statement makes a heap type; 3 is no type.
            for other in [c"types.FunctionType", c"collections.OrderedDict", c"3"] {
                assert!(!builtin_by_name_of(py, other), "{other:?}");
            }
            let heap = module(py, "fp_test_class_heap", c"class Local: pass");
            assert!(!builtin_by_name(&heap.getattr("Local").unwrap()).unwrap());
        });
    }
}
