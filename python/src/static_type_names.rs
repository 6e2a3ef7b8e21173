//! The `__module__` and `__qualname__` of static types (types defined in C,
//! as numpy's `dtype`), remembered per type.
//!
//! For such a type both getters make a new str from `tp_name` on every read
//! (the module part is interned, which hashes it), so the by-value decision
//! and the writer's name check made and hashed four strs for `dtype` in
//! every numpy pickle. A static type's name cannot change (setting
//! `__name__`, `__qualname__` or `__module__` on an immutable type is a
//! TypeError), so what its getters return is read once and kept: a str
//! keeps its hash, so later dict lookups of them need no hashing either.
//!
//! Each thread keeps its own table: a numpy dump reads it five times, and
//! behind a mutex that was five lock and unlock pairs, locked instructions
//! that stall the core for much longer than callgrind's count of them says.

use std::cell::RefCell;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::class_attrs::inherits_types_own;
use crate::quick_hash::QuickMap;

/// A static type's names by its address; the type is held, so the address
/// is never reused.
struct Names {
    _type: Py<PyAny>,
    module: Py<PyString>,
    qualname: Py<PyString>,
}

thread_local! {
    static NAMES: RefCell<QuickMap<usize, Names>> = RefCell::new(QuickMap::default());
}

/// `obj.__module__`, when `obj` is a static type that reads it from its
/// `tp_name`; None for anything else (whose attribute must be read).
pub(crate) fn module_of<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    names_of(obj).map(|(module, _)| module)
}

/// `obj.__qualname__`, as `module_of` reads `__module__`.
pub(crate) fn qualname_of<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    names_of(obj).map(|(_, qualname)| qualname)
}

fn names_of<'py>(obj: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyString>, Bound<'py, PyString>)> {
    let py = obj.py();
    if !is_static_type(obj) || !getters_are_types_own(obj) {
        return None;
    }
    let key = obj.as_ptr() as usize;
    let known = NAMES.try_with(|cache| {
        let cache = cache.borrow();
        let names = cache.get(&key)?;
        Some((names.module.bind(py).clone(), names.qualname.bind(py).clone()))
    });
    if let Ok(Some(found)) = known {
        return Some(found);
    }
    // Read with no borrow held: the getters are CPython's, but reading
    // still runs the interpreter.
    let names = read_names(obj)?;
    let found = (names.module.bind(py).clone(), names.qualname.bind(py).clone());
    // A thread being torn down keeps nothing; what it replaces (nothing, as
    // a miss came first) is dropped after the borrow ends.
    let replaced = NAMES.try_with(|cache| cache.borrow_mut().insert(key, names));
    drop(replaced);
    Some(found)
}

/// The getters' answers, kept as they are; None where one fails or is not
/// a str (the caller's own `getattr` then raises or handles it). They must
/// stay distinct objects: the writer memoizes names by identity, and the
/// C pickler, which gets a new qualname each time, writes `datetime`'s
/// module and qualname (both "datetime") as two strs.
fn read_names(obj: &Bound<'_, PyAny>) -> Option<Names> {
    let py = obj.py();
    let read = |name| Some(obj.getattr(name).ok()?.cast_into::<PyString>().ok()?.unbind());
    Some(Names {
        _type: obj.clone().unbind(),
        module: read(intern!(py, "__module__"))?,
        qualname: read(intern!(py, "__qualname__"))?,
    })
}

fn is_static_type(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object, then a read of its flags.
    unsafe {
        ffi::PyType_Check(obj.as_ptr()) != 0
            && ffi::PyType_GetFlags(obj.as_ptr().cast::<ffi::PyTypeObject>()) & ffi::Py_TPFLAGS_HEAPTYPE == 0
    }
}

/// Whether `obj.__module__` and `obj.__qualname__` are `type`'s getters:
/// a metaclass may define its own, which then win.
fn getters_are_types_own(obj: &Bound<'_, PyAny>) -> bool {
    let py = obj.py();
    // SAFETY: a live object's type.
    let metatype = unsafe { ffi::Py_TYPE(obj.as_ptr()) };
    if metatype == &raw mut ffi::PyType_Type {
        return true;
    }
    [intern!(py, "__module__"), intern!(py, "__qualname__")]
        .into_iter()
        // SAFETY: a live object's type, attached.
        .all(|name| unsafe { inherits_types_own(metatype, name) })
}
