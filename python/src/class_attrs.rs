//! Attributes of classes whose metaclass defines `__getattr__` (an enum's
//! `EnumType` on Python 3.11), read without going through Python.
//!
//! For such a metaclass CPython's `getattr(cls, name)` runs the slot hook
//! that calls `type.__getattribute__` as a Python-level method (a wrapper
//! call, ~250 instructions), and `__getattr__` only when that raises
//! AttributeError. When the metaclass keeps `type`'s own
//! `__getattribute__`, the first step is `type`'s attribute lookup, called
//! here directly; a miss still goes to the metaclass's `__getattr__`, as
//! the hook would send it. Anything else is plain `getattr`.

use pyo3::exceptions::PyAttributeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::cpython::_PyType_Lookup;

/// Whether `metaclass` finds `type`'s own attribute `name` along its MRO
/// (it defines none of its own in between).
///
/// # Safety
/// `metaclass` is a live type; the caller is attached.
pub(crate) unsafe fn inherits_types_own(metaclass: *mut ffi::PyTypeObject, name: &Bound<'_, PyString>) -> bool {
    // SAFETY: live types and a str; both results are borrowed pointers (or
    // null), compared only.
    unsafe {
        let found = _PyType_Lookup(metaclass, name.as_ptr());
        !found.is_null() && found == _PyType_Lookup(&raw mut ffi::PyType_Type, name.as_ptr())
    }
}

/// Gives `kind` a valid version tag if it can have one: CPython assigns
/// tags lazily, on a method-cache lookup (a name of at most 100 characters
/// that is an exact str), which is all this lookup is for.
///
/// # Safety
/// `kind` is a live type; the caller is attached.
#[cfg(not(Py_3_13))]
pub(crate) unsafe fn assign_version_tag(py: Python<'_>, kind: *mut ffi::PyTypeObject) {
    // SAFETY: a lookup on a live type with a str; the borrowed result is
    // dropped unused, and a miss sets no exception.
    unsafe {
        _PyType_Lookup(kind, intern!(py, "__getattr__").as_ptr());
    }
}

/// `getattr(obj, name)`.
pub(crate) fn getattr<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    let Some(metaclass_getattr) = hooked_metaclass_getattr(obj) else {
        return obj.getattr(name);
    };
    let py = obj.py();
    // SAFETY: `obj` is a type (checked above); `type`'s own attribute
    // lookup returns a new reference or sets an exception.
    let found = unsafe {
        let lookup = ffi::PyType_Type.tp_getattro.expect("type has an attribute lookup");
        Bound::from_owned_ptr_or_err(py, lookup(obj.as_ptr(), name.as_ptr()))
    };
    match found {
        Err(err) if err.is_instance_of::<PyAttributeError>(py) => call_getattr(obj, &metaclass_getattr, name),
        found => found,
    }
}

/// The metaclass's `__getattr__`, when `obj` is a class whose `getattr`
/// is the slot hook around `type`'s own `__getattribute__`; None when
/// `getattr` is to be used as it is.
fn hooked_metaclass_getattr<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = obj.py();
    // SAFETY: type checks and MRO lookups on live objects; the borrowed
    // results are compared by address, or made strong at once.
    unsafe {
        if ffi::PyType_Check(obj.as_ptr()) == 0 {
            return None;
        }
        let metaclass = ffi::Py_TYPE(obj.as_ptr());
        let type_type = &raw mut ffi::PyType_Type;
        // Slot functions compared by address: CPython's own, one address
        // each in the process.
        let address = |slot: Option<ffi::getattrofunc>| slot.map(|f| f as usize);
        if metaclass == type_type || address((*metaclass).tp_getattro) == address((*type_type).tp_getattro) {
            return None;
        }
        if !inherits_types_own(metaclass, intern!(py, "__getattribute__")) {
            return None;
        }
        let found = _PyType_Lookup(metaclass, intern!(py, "__getattr__").as_ptr());
        Bound::from_borrowed_ptr_or_opt(py, found)
    }
}

/// `__getattr__` called as the slot hook calls it: bound to `obj` through
/// its descriptor `__get__` when it has one, then given the name.
fn call_getattr<'py>(
    obj: &Bound<'py, PyAny>,
    metaclass_getattr: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    // SAFETY: reading a slot of a live type; the getter returns a new
    // reference or sets an exception.
    let bound = unsafe {
        match (*ffi::Py_TYPE(metaclass_getattr.as_ptr())).tp_descr_get {
            Some(get) => Bound::from_owned_ptr_or_err(
                py,
                get(
                    metaclass_getattr.as_ptr(),
                    obj.as_ptr(),
                    ffi::Py_TYPE(obj.as_ptr()).cast(),
                ),
            )?,
            None => metaclass_getattr.clone(),
        }
    };
    bound.call1((name,))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{module, with_python};

    const SOURCE: &std::ffi::CStr = c"
import enum
class Meta(type):
    def __getattr__(cls, name):
        if name == 'virtual':
            return 'from __getattr__'
        raise AttributeError(name)
class WithHook(metaclass=Meta):
    real = 1
class Colour(enum.Enum):
    RED = 1
";

    #[test]
    fn answers_as_getattr_does() {
        with_python(|py| {
            let m = module(py, "fp_test_class_attrs", SOURCE);
            let class = m.getattr("WithHook").unwrap();
            let read = |name: &str| getattr(&class, &PyString::new(py, name));
            assert_eq!(read("real").unwrap().extract::<i64>().unwrap(), 1);
            assert_eq!(read("__name__").unwrap().extract::<String>().unwrap(), "WithHook");
            assert_eq!(
                read("virtual").unwrap().extract::<String>().unwrap(),
                "from __getattr__"
            );
            let missing = read("missing").unwrap_err();
            assert!(missing.is_instance_of::<PyAttributeError>(py));
            let colour = m.getattr("Colour").unwrap();
            let members = getattr(&colour, &PyString::new(py, "_member_names_")).unwrap();
            assert_eq!(members.extract::<Vec<String>>().unwrap(), ["RED"]);
        });
    }
}
