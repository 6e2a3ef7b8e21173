//! The load-time reconstructors. Pickles name them as `flightpickle._<name>`
//! (written before, as `flightpickle._reconstruct.<name>`, which still
//! holds them): those names and their argument shapes are a wire format.
//! Adding a name is fine; renaming one or changing what it accepts breaks
//! every pickle already written.
//!
//! The argument and state shapes are cloudpickle 3.1's, so that a pickle
//! for a process that only has cloudpickle differs only in these names;
//! `functions.rs` adds the native writer's own, denser, function shape.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use crate::{objects, tracker, version};

mod code;
mod dataclass_parts;
pub(crate) mod descriptors;
mod functions;
pub(crate) mod loaded_code;

/// Where pickles find these functions, as `_<name>`: the package itself.
/// The unpickler imports a global's module on every load (`__import__`),
/// and for a dotted module name it imports the front package again, so an
/// undotted home costs each name the loader finds ~1.5k instructions less.
/// A top-level module of its own would cost the same, but would be one more
/// name in site-packages and in what policies allow.
pub(crate) const HOME: &str = "flightpickle";

/// A function from its code and a globals dict that the state fills later.
#[pyfunction]
#[pyo3(name = "_make_function")]
fn make_function<'py>(
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyDict>,
    name: &Bound<'py, PyAny>,
    argdefs: &Bound<'py, PyAny>,
    closure: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    globals.set_item(intern!(py, "__builtins__"), objects::builtins_dict(py)?)?;
    objects::function_type(py)?.call1((code, globals, name, argdefs, closure))
}

/// Fills a function made by `make_function`: `state` is `(dict, slots)`.
/// `__globals__` and `__closure__` are read-only, so they are filled in place;
/// cells that were empty when pickled stay empty.
#[pyfunction]
#[pyo3(name = "_function_setstate")]
fn function_setstate<'py>(func: &Bound<'py, PyAny>, state: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let py = func.py();
    let (attrs, slots) = two_dicts(state)?;
    func.getattr(intern!(py, "__dict__"))?
        .cast_into::<PyDict>()?
        .update(attrs.as_mapping())?;
    let func_globals = func.getattr(intern!(py, "__globals__"))?.cast_into::<PyDict>()?;
    if let Some(globals) = slots.get_item(intern!(py, "__globals__"))? {
        func_globals.update(globals.cast::<PyDict>()?.as_mapping())?;
    }
    func_globals.set_item(intern!(py, "__builtins__"), objects::builtins_dict(py)?)?;
    if let Some(cells) = slots.get_item(intern!(py, "__closure__"))? {
        fill_closure(func, &cells)?;
    }
    for (key, value) in slots.iter() {
        let key = key.cast_into::<PyString>()?;
        if !matches!(key.to_str()?, "__globals__" | "__closure__" | "_cloudpickle_submodules") {
            func.setattr(key, value)?;
        }
    }
    Ok(func.clone())
}

fn fill_closure(func: &Bound<'_, PyAny>, cells: &Bound<'_, PyAny>) -> PyResult<()> {
    if cells.is_none() {
        return Ok(());
    }
    let cells = cells.cast::<PyTuple>()?;
    let own = func.getattr(intern!(func.py(), "__closure__"))?;
    let own = match own.cast_into::<PyTuple>() {
        Ok(own) if own.len() == cells.len() => own,
        _ => return Err(PyValueError::new_err("closure size does not match the function's code")),
    };
    for (source, target) in cells.iter().zip(own.iter()) {
        if let Some(value) = cell_contents(&source)? {
            set_cell(&target, Some(&value))?;
        }
    }
    Ok(())
}

fn two_dicts<'py>(state: &Bound<'py, PyTuple>) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let (first, second) = state.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?;
    Ok((first.cast_into::<PyDict>()?, second.cast_into::<PyDict>()?))
}

/// A new cell holding `value` (which may be None: that is not an empty cell).
#[pyfunction]
#[pyo3(name = "_make_cell")]
fn make_cell<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    cell_of(value.py(), Some(value))
}

#[pyfunction]
#[pyo3(name = "_make_empty_cell")]
fn make_empty_cell(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    cell_of(py, None)
}

fn cell_of<'py>(py: Python<'py>, value: Option<&Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyAny>> {
    let ptr = value.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // SAFETY: PyCell_New borrows the (possibly null) value and returns a new reference.
    unsafe { Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyCell_New(ptr)) }
}

/// A new cell holding `value`.
pub(crate) fn new_cell<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    cell_of(value.py(), Some(value))
}

/// The contents of a cell, None when it is empty.
pub(crate) fn cell_contents<'py>(cell: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    require_cell(cell)?;
    // SAFETY: `cell` is a cell (checked); PyCell_Get returns a new reference or null when empty.
    Ok(unsafe { Bound::from_owned_ptr_or_opt(cell.py(), pyo3::ffi::PyCell_Get(cell.as_ptr())) })
}

fn set_cell(cell: &Bound<'_, PyAny>, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    require_cell(cell)?;
    let ptr = value.map_or(std::ptr::null_mut(), Bound::as_ptr);
    // SAFETY: `cell` is a cell (checked); PyCell_Set borrows the value.
    if unsafe { pyo3::ffi::PyCell_Set(cell.as_ptr(), ptr) } < 0 {
        return Err(PyErr::fetch(cell.py()));
    }
    Ok(())
}

pub(crate) fn is_cell(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object.
    unsafe { pyo3::ffi::PyCell_Check(obj.as_ptr()) != 0 }
}

fn require_cell(obj: &Bound<'_, PyAny>) -> PyResult<()> {
    if is_cell(obj) {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!(
            "expected a cell, got {}",
            obj.get_type().name()?
        )))
    }
}

/// A class of the `types` module, by name (code, method and cell types have
/// no importable name of their own).
#[pyfunction]
#[pyo3(name = "_builtin_type")]
fn builtin_type<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    let found = objects::types_module(py)?.getattr(name)?;
    if !found.is_instance_of::<PyType>() {
        return Err(PyValueError::new_err(format!("types.{name} is not a class")));
    }
    Ok(found)
}

/// A class of the `builtins` module, by name: what the global
/// `builtins.<name>` finds. The unpickler finds a global by importing its
/// module, and importing `builtins` costs ~8k instructions a name where
/// another module costs ~4k (the import's "still initializing?" check
/// raises and clears an AttributeError: `builtins` was made before the
/// import system and its spec has no `_initializing`); this call, once its
/// own name is memoized, ~1k. The native writer writes builtin classes so;
/// classes only, as a find_class that allows flightpickle's reconstructors
/// should not be handed `eval` by one.
#[pyfunction]
#[pyo3(name = "_builtins_class")]
fn builtins_class<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    let found = objects::builtins_dict(py)?
        .cast::<PyDict>()?
        .get_item(name)?
        .ok_or_else(|| PyValueError::new_err(format!("builtins has no {name}")))?;
    if !found.is_instance_of::<PyType>() {
        return Err(PyValueError::new_err(format!("builtins.{name} is not a class")));
    }
    Ok(found)
}

/// A class with the right metaclass, name and bases and an empty body; the
/// state fills it. What `types.new_class` does, without its callback. The
/// metaclass None stands for `type` (the native writer's shorter form). A
/// class this process already tracks under the id is taken as it is (see
/// `tracked`).
#[pyfunction]
#[pyo3(name = "_make_skeleton_class")]
#[pyo3(signature = (metaclass, name, bases, type_kwargs, class_tracker_id, extra = None))]
fn make_skeleton_class<'py>(
    metaclass: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    bases: &Bound<'py, PyTuple>,
    type_kwargs: &Bound<'py, PyDict>,
    class_tracker_id: Option<&str>,
    extra: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let _ = extra;
    let py = name.py();
    if let Some(class) = tracked(py, class_tracker_id) {
        return Ok(class);
    }
    if plain_type_class(metaclass, bases) {
        let namespace = PyDict::new(py);
        copy_type_kwargs(type_kwargs, &namespace)?;
        let class = py.get_type::<PyType>().call1((name, bases, namespace))?;
        return track(class_tracker_id, class);
    }
    let resolved = objects::resolve_bases(py)?.call1((bases,))?;
    let kwds = PyDict::new(py);
    if metaclass.is_none() {
        kwds.set_item(intern!(py, "metaclass"), py.get_type::<PyType>())?;
    } else {
        kwds.set_item(intern!(py, "metaclass"), metaclass)?;
    }
    let prepared = objects::prepare_class(py)?.call1((name, &resolved, kwds))?;
    let (meta, namespace, kwds) = prepared.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>, Bound<'py, PyDict>)>()?;
    copy_type_kwargs(type_kwargs, &namespace)?;
    if !resolved.is(bases) {
        namespace.set_item(intern!(py, "__orig_bases__"), bases)?;
    }
    let class = meta.call((name, resolved, namespace), Some(&kwds))?;
    track(class_tracker_id, class)
}

/// Whether the class is made by `type` itself from a namespace that is a
/// plain dict: the metaclass is `type` (None on the wire) and every base is
/// a class whose own metaclass is exactly `type`. Then `resolve_bases`
/// leaves the bases as they are and `prepare_class` picks `type`, whose
/// `__prepare__` gives an empty dict, so neither Python function needs to
/// run.
fn plain_type_class(metaclass: &Bound<'_, PyAny>, bases: &Bound<'_, PyTuple>) -> bool {
    let type_type = metaclass.py().get_type::<PyType>();
    (metaclass.is_none() || metaclass.is(&type_type)) && bases.iter().all(|base| base.get_type().is(&type_type))
}

/// The skeleton's namespace entries (`__module__`, `__qualname__`, ...),
/// their names interned as a class body's are.
fn copy_type_kwargs<'py>(type_kwargs: &Bound<'py, PyDict>, namespace: &Bound<'py, PyAny>) -> PyResult<()> {
    for (key, value) in type_kwargs.iter() {
        namespace.set_item(interned(key.cast_into::<PyString>()?)?, value)?;
    }
    Ok(())
}

/// `name` interned: an exact str in place (no copy when it is already the
/// interned one, or can become it), a str subclass as a new exact str.
fn interned(name: Bound<'_, PyString>) -> PyResult<Bound<'_, PyString>> {
    let py = name.py();
    if !name.is_exact_instance_of::<PyString>() {
        return Ok(PyString::intern(py, name.to_str()?));
    }
    let mut pointer = name.into_ptr();
    // SAFETY: `pointer` is an owned reference to an exact str; interning
    // swaps it for the interned one, still an owned reference.
    unsafe {
        ffi::PyUnicode_InternInPlace(&mut pointer);
        Ok(Bound::from_owned_ptr(py, pointer).cast_into_unchecked())
    }
}

/// An enum class with its members; the state adds the rest of its body.
#[pyfunction]
#[pyo3(name = "_make_skeleton_enum")]
#[pyo3(signature = (bases, name, qualname, members, module, class_tracker_id, extra = None))]
fn make_skeleton_enum<'py>(
    bases: &Bound<'py, PyTuple>,
    name: &Bound<'py, PyAny>,
    qualname: &Bound<'py, PyAny>,
    members: &Bound<'py, PyDict>,
    module: &Bound<'py, PyAny>,
    class_tracker_id: Option<&str>,
    extra: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let _ = extra;
    let py = name.py();
    if let Some(class) = tracked(py, class_tracker_id) {
        return Ok(class);
    }
    let enum_base = bases.get_item(
        bases
            .len()
            .checked_sub(1)
            .ok_or_else(|| PyValueError::new_err("an enum needs at least one base"))?,
    )?;
    let metaclass = enum_base.get_type();
    let namespace = metaclass.call_method1(intern!(py, "__prepare__"), (name, bases))?;
    for (member, value) in members.iter() {
        namespace.set_item(member, value)?;
    }
    let class = metaclass.call_method1(intern!(py, "__new__"), (&metaclass, name, bases, namespace))?;
    class.setattr(intern!(py, "__module__"), module)?;
    class.setattr(intern!(py, "__qualname__"), qualname)?;
    track(class_tracker_id, class)
}

/// What this process already has under `id`: a class (or typing variable)
/// that an earlier load made, or that was defined here and dumped. A load
/// takes it before making anything: cloudpickle makes a skeleton and drops
/// it for the tracked class, which runs the metaclass and the bases'
/// `__init_subclass__` for nothing, and is most of a small class's load
/// (the `type()` call). The state that follows still sets the class's
/// body, as cloudpickle's does.
fn tracked<'py>(py: Python<'py>, id: Option<&str>) -> Option<Bound<'py, PyAny>> {
    tracker::lookup(py, id?)
}

fn track<'py>(id: Option<&str>, class: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match id {
        Some(id) => tracker::lookup_or_track(id, class),
        None => Ok(class),
    }
}

/// Sets the class body; `_abc_impl` holds the virtual subclasses to register.
#[pyfunction]
#[pyo3(name = "_class_setstate")]
fn class_setstate<'py>(class: &Bound<'py, PyAny>, state: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let (attrs, _slots) = two_dicts(state)?;
    let mut registry = None;
    for (key, value) in attrs.iter() {
        if key
            .cast::<PyString>()
            .is_ok_and(|k| k.to_str().is_ok_and(|k| k == "_abc_impl"))
        {
            registry = Some(value);
        } else {
            class.setattr(key.cast_into::<PyString>()?, value)?;
        }
    }
    if version::restores_firstlineno(py)
        && let Some(line) = attrs.get_item(intern!(py, "__firstlineno__"))?
    {
        class.setattr(intern!(py, "__firstlineno__"), line)?;
    }
    if let Some(registry) = registry {
        for subclass in registry.try_iter()? {
            class.call_method1(intern!(py, "register"), (subclass?,))?;
        }
    }
    Ok(class.clone())
}

/// An importable module, imported.
#[pyfunction]
#[pyo3(name = "_subimport")]
fn subimport<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    if let Some(module) = already_imported(name)? {
        return Ok(module);
    }
    py.import(name)?;
    objects::sys_modules(py).as_any().get_item(name)
}

/// `sys.modules[name]` when it is there, without the trip through
/// `__import__` that `import` makes even for a module it has: a pickle
/// names its modules on every load. Like `import`, this waits for a module
/// that another thread is still initialising.
fn already_imported<'py>(name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = name.py();
    if let Some(module) = settled_module(name)? {
        return Ok(Some(module));
    }
    // SAFETY: PyImport_GetModule returns a new reference, or null with an
    // exception set on error, or null without one when the name is absent.
    let module = unsafe { Bound::from_owned_ptr_or_opt(py, pyo3::ffi::PyImport_GetModule(name.as_ptr())) };
    match (module, PyErr::take(py)) {
        (_, Some(err)) => Err(err),
        (Some(module), None) if !module.is_none() => Ok(Some(module)),
        _ => Ok(None),
    }
}

/// `sys.modules[name]` when it is a plain module whose `__spec__` says
/// plainly that its import is over, read from the dicts without
/// `PyImport_GetModule`'s generic item and attribute lookups (~0.5k a
/// module). Over means what the import system reads: `_initializing` is
/// False, or the spec has no such attribute (modules set up before
/// `importlib`, such as `sys`). Anything else (absent, a module subclass,
/// no spec, an import still running, a lookup that fails) gives None, and
/// `already_imported` asks `PyImport_GetModule`, which waits for a module
/// another thread is initialising.
fn settled_module<'py>(name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = name.py();
    let spec_key = intern!(py, "__spec__");
    let initializing_key = intern!(py, "_initializing");
    // SAFETY: every pointer is borrowed from a live dict and made strong at
    // once; null without an exception means absent, with one an error.
    unsafe {
        let modules = ffi::PyImport_GetModuleDict();
        if ffi::PyDict_CheckExact(modules) == 0 {
            return Ok(None);
        }
        let module = ffi::PyDict_GetItemWithError(modules, name.as_ptr());
        if module.is_null() {
            return PyErr::take(py).map_or(Ok(None), Err);
        }
        if ffi::PyModule_CheckExact(module) == 0 {
            return Ok(None);
        }
        let module = Bound::from_borrowed_ptr(py, module);
        let spec = ffi::PyDict_GetItemWithError(ffi::PyModule_GetDict(module.as_ptr()), spec_key.as_ptr());
        if spec.is_null() || spec == ffi::Py_None() {
            return PyErr::take(py).map_or(Ok(None), Err);
        }
        // Held for the lookup, which may run code that replaces the spec.
        let spec = Bound::from_borrowed_ptr(py, spec);
        let initializing = ffi::PyObject_GetAttr(spec.as_ptr(), initializing_key.as_ptr());
        if initializing.is_null() {
            let missing = ffi::PyErr_ExceptionMatches(ffi::PyExc_AttributeError) != 0;
            ffi::PyErr_Clear();
            // A lookup that failed otherwise: the general path decides.
            return Ok(missing.then_some(module));
        }
        let settled = initializing == ffi::Py_False();
        ffi::Py_DECREF(initializing);
        Ok(settled.then_some(module))
    }
}

/// A module shipped by value: a fresh module object with the given namespace.
#[pyfunction]
#[pyo3(name = "_dynamic_subimport")]
fn dynamic_subimport<'py>(name: &Bound<'py, PyString>, vars: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    let module = objects::module_type(py)?.call1((name,))?;
    let namespace = module.getattr(intern!(py, "__dict__"))?.cast_into::<PyDict>()?;
    // A new module's namespace holds the five keys its type sets. When
    // `vars` replaces all five (as a module's copied namespace does), the
    // namespace is emptied first: CPython then copies `vars` into it whole
    // instead of inserting a key at a time and resizing as it grows.
    if replaces_all(&namespace, vars)? {
        namespace.clear();
    }
    namespace.update(vars.as_mapping())?;
    namespace.set_item(intern!(py, "__builtins__"), objects::builtins_dict(py)?)?;
    Ok(module)
}

/// Whether every key of `namespace` is in `vars`.
fn replaces_all(namespace: &Bound<'_, PyDict>, vars: &Bound<'_, PyDict>) -> PyResult<bool> {
    for key in namespace.keys() {
        if !vars.contains(key)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[pyfunction]
#[pyo3(name = "_make_dict_keys")]
#[pyo3(signature = (keys, is_ordered = false))]
fn make_dict_keys<'py>(keys: &Bound<'py, PyAny>, is_ordered: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = keys.py();
    let dict = dict_kind(py, is_ordered)?.call_method1(intern!(py, "fromkeys"), (keys,))?;
    dict.call_method0(intern!(py, "keys"))
}

#[pyfunction]
#[pyo3(name = "_make_dict_values")]
#[pyo3(signature = (values, is_ordered = false))]
fn make_dict_values<'py>(values: &Bound<'py, PyAny>, is_ordered: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = values.py();
    let pairs = PyList::empty(py);
    for (index, value) in values.try_iter()?.enumerate() {
        pairs.append((index, value?))?;
    }
    dict_kind(py, is_ordered)?
        .call1((pairs,))?
        .call_method0(intern!(py, "values"))
}

#[pyfunction]
#[pyo3(name = "_make_dict_items")]
#[pyo3(signature = (items, is_ordered = false))]
fn make_dict_items<'py>(items: &Bound<'py, PyAny>, is_ordered: bool) -> PyResult<Bound<'py, PyAny>> {
    let py = items.py();
    dict_kind(py, is_ordered)?
        .call1((items,))?
        .call_method0(intern!(py, "items"))
}

fn dict_kind(py: Python<'_>, ordered: bool) -> PyResult<Bound<'_, PyAny>> {
    if ordered {
        Ok(objects::ordered_dict(py)?.clone())
    } else {
        Ok(py.get_type::<PyDict>().into_any())
    }
}

/// The field-kind markers of `dataclasses`, which are compared by identity.
/// Held once found: an import per call would cost more than the rest of it.
#[pyfunction]
#[pyo3(name = "_get_dataclass_field_type_sentinel")]
fn get_dataclass_field_type_sentinel<'py>(py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
    Ok(dataclass_field_marker(py, name)?.clone())
}

fn dataclass_field_marker<'py>(py: Python<'py>, name: &str) -> PyResult<&'py Bound<'py, PyAny>> {
    match name {
        "_FIELD" => objects::dataclass_field(py),
        "_FIELD_CLASSVAR" => objects::dataclass_field_classvar(py),
        "_FIELD_INITVAR" => objects::dataclass_field_initvar(py),
        _ => Err(PyValueError::new_err(format!(
            "unknown dataclass field marker {name:?}"
        ))),
    }
}

/// A TypeVar defined where no import can reach it, tracked like a class.
#[pyfunction]
#[pyo3(name = "_make_typevar")]
fn make_typevar<'py>(
    name: &Bound<'py, PyAny>,
    bound: &Bound<'py, PyAny>,
    constraints: &Bound<'py, PyTuple>,
    covariant: bool,
    contravariant: bool,
    class_tracker_id: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    if let Some(typevar) = tracked(py, class_tracker_id) {
        return Ok(typevar);
    }
    let args = PyTuple::new(
        py,
        std::iter::once(name.clone())
            .chain(constraints.iter())
            .collect::<Vec<_>>(),
    )?;
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "bound"), bound)?;
    kwargs.set_item(intern!(py, "covariant"), covariant)?;
    kwargs.set_item(intern!(py, "contravariant"), contravariant)?;
    let typevar = objects::typevar_type(py)?.call(args, Some(&kwargs))?;
    track(class_tracker_id, typevar)
}

#[pyfunction]
#[pyo3(name = "_make_paramspec")]
fn make_paramspec<'py>(
    name: &Bound<'py, PyAny>,
    bound: &Bound<'py, PyAny>,
    covariant: bool,
    contravariant: bool,
    class_tracker_id: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    if let Some(spec) = tracked(py, class_tracker_id) {
        return Ok(spec);
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item(intern!(py, "bound"), bound)?;
    kwargs.set_item(intern!(py, "covariant"), covariant)?;
    kwargs.set_item(intern!(py, "contravariant"), contravariant)?;
    let spec = py
        .import("typing")?
        .getattr("ParamSpec")?
        .call((name,), Some(&kwargs))?;
    track(class_tracker_id, spec)
}

#[pyfunction]
#[pyo3(name = "_make_typevartuple")]
fn make_typevartuple<'py>(name: &Bound<'py, PyAny>, class_tracker_id: Option<&str>) -> PyResult<Bound<'py, PyAny>> {
    if let Some(variable) = tracked(name.py(), class_tracker_id) {
        return Ok(variable);
    }
    let variable = name.py().import("typing")?.getattr("TypeVarTuple")?.call1((name,))?;
    track(class_tracker_id, variable)
}

/// `NewType` takes its module from the caller's frame: set it explicitly.
#[pyfunction]
#[pyo3(name = "_make_newtype")]
fn make_newtype<'py>(
    qualname: &Bound<'py, PyAny>,
    supertype: &Bound<'py, PyAny>,
    module: &Bound<'py, PyAny>,
    class_tracker_id: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = qualname.py();
    if let Some(new_type) = tracked(py, class_tracker_id) {
        return Ok(new_type);
    }
    let new_type = py.import("typing")?.getattr("NewType")?.call1((qualname, supertype))?;
    new_type.setattr(intern!(py, "__module__"), module)?;
    track(class_tracker_id, new_type)
}

/// A text file's content, already rebuilt as an `io.StringIO`.
#[pyfunction]
#[pyo3(name = "_file_reconstructor")]
fn file_reconstructor<'py>(contents: &Bound<'py, PyAny>) -> Bound<'py, PyAny> {
    contents.clone()
}

/// The reconstructors, as a module named `HOME`, so that each reports the
/// package as its `__module__` (pickle writes a global as its module and
/// qualname); the package binds them (`flightpickle/__init__.py`).
pub(crate) fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, HOME)?;
    m.add_function(wrap_pyfunction!(make_function, &m)?)?;
    m.add_function(wrap_pyfunction!(function_setstate, &m)?)?;
    m.add_function(wrap_pyfunction!(functions::new_function, &m)?)?;
    m.add_function(wrap_pyfunction!(functions::fill_function, &m)?)?;
    m.add_function(wrap_pyfunction!(descriptors::make_descriptor, &m)?)?;
    m.add_function(wrap_pyfunction!(make_cell, &m)?)?;
    m.add_function(wrap_pyfunction!(make_empty_cell, &m)?)?;
    m.add_function(wrap_pyfunction!(builtin_type, &m)?)?;
    m.add_function(wrap_pyfunction!(builtins_class, &m)?)?;
    m.add_function(wrap_pyfunction!(make_skeleton_class, &m)?)?;
    m.add_function(wrap_pyfunction!(make_skeleton_enum, &m)?)?;
    m.add_function(wrap_pyfunction!(class_setstate, &m)?)?;
    m.add_function(wrap_pyfunction!(subimport, &m)?)?;
    m.add_function(wrap_pyfunction!(dynamic_subimport, &m)?)?;
    m.add_function(wrap_pyfunction!(make_dict_keys, &m)?)?;
    m.add_function(wrap_pyfunction!(make_dict_values, &m)?)?;
    m.add_function(wrap_pyfunction!(make_dict_items, &m)?)?;
    m.add_function(wrap_pyfunction!(get_dataclass_field_type_sentinel, &m)?)?;
    m.add_function(wrap_pyfunction!(dataclass_parts::make_dataclass_part, &m)?)?;
    m.add_function(wrap_pyfunction!(make_typevar, &m)?)?;
    m.add_function(wrap_pyfunction!(file_reconstructor, &m)?)?;
    m.add_function(wrap_pyfunction!(make_paramspec, &m)?)?;
    m.add_function(wrap_pyfunction!(make_typevartuple, &m)?)?;
    m.add_function(wrap_pyfunction!(make_newtype, &m)?)?;
    Ok(m)
}
