//! Objects whose class defines `__reduce__` as a Python function and keeps
//! `object`'s `__reduce_ex__`: a `Fraction`, and most classes that choose
//! their own pickled form. For them `obj.__reduce_ex__(protocol)` makes a
//! bound method, and `object.__reduce_ex__` then makes a second one for
//! `obj.__reduce__`, reads `type(obj).__reduce__` to see that it is not
//! `object`'s, and calls the bound method, which calls the function with
//! `obj`: three calls before the function runs, which with the writer's
//! own lookup of `__reduce_ex__` cost a `Fraction` ~1.4k instructions
//! (5.6k an object in all, where `pickle` takes 4.9k).
//! Where nothing can make those lookups find anything else, the writer
//! calls the function with `obj` itself, the call they end in.
//!
//! What the lookups would find is read from the types alone, so only
//! objects without an instance dict are taken (a dict could hold either
//! name, and reading a 3.11 instance's dict makes it into a dict object).

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::cpython::_PyType_Lookup;

/// Off only in tests, which compare this call with the old way's.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the direct call of a class's own `__reduce__` on or off; returns
/// whether it was on. For tests that compare it with `__reduce_ex__`.
#[pyfunction]
pub(crate) fn set_own_reduce_calls(enabled: bool) -> bool {
    ENABLED.swap(enabled, Ordering::Relaxed)
}

/// What the writer learns of `obj`'s reduction from its type's
/// `__reduce__`, looked up once for the routes that depend on it.
pub(super) enum TypeReduce<'py> {
    /// `object`'s own: the type defines none, and the default reduction
    /// may apply (`defaults.rs` checks the rest).
    Objects,
    /// A function that `obj.__reduce_ex__(protocol)` is certain to call with
    /// `obj` alone and return the result of.
    CallDirectly(Bound<'py, PyAny>),
    /// Another `__reduce__`, or an attribute lookup of the type's own:
    /// never the default reduction, and `__reduce_ex__` is asked.
    Other,
}

/// Where `obj`'s type's `__reduce__` leads.
///
/// A function is called directly when: `obj`'s type has the generic
/// attribute lookup and no instance dict, so both names are found on its
/// MRO; that MRO gives `object`'s `__reduce_ex__` and a plain function as
/// `__reduce__`, which binds to `obj` and is what `type(obj).__reduce__`
/// gives back as well; and the metaclass looks attributes up as `type`
/// does and finds `object`'s `__reduce__` (no data descriptor that
/// `type(obj).__reduce__` would call instead). The lookups run no Python
/// code.
#[inline]
pub(super) fn type_reduce<'py>(obj: &Bound<'py, PyAny>) -> TypeReduce<'py> {
    let py = obj.py();
    let reduce_name = intern!(py, "__reduce__");
    let address = |slot: Option<ffi::getattrofunc>| slot.map(|f| f as usize);
    // SAFETY: field reads and MRO lookups on live types with str names;
    // the borrowed results are compared by address, and the one kept is
    // made strong before anything else runs.
    unsafe {
        let kind = ffi::Py_TYPE(obj.as_ptr());
        // Both routes need the generic lookup.
        if address((*kind).tp_getattro) != address(Some(ffi::PyObject_GenericGetAttr)) {
            return TypeReduce::Other;
        }
        let (objects_reduce, objects_reduce_ex) = objects_methods(py);
        let reduce = _PyType_Lookup(kind, reduce_name.as_ptr());
        if reduce == objects_reduce {
            return TypeReduce::Objects;
        }
        if !ENABLED.load(Ordering::Relaxed)
            || reduce.is_null()
            || ffi::Py_TYPE(reduce) != &raw mut ffi::PyFunction_Type
            || (*kind).tp_dictoffset != 0
            || _PyType_Lookup(kind, intern!(py, "__reduce_ex__").as_ptr()) != objects_reduce_ex
        {
            return TypeReduce::Other;
        }
        let metaclass = ffi::Py_TYPE(kind.cast::<ffi::PyObject>());
        if address((*metaclass).tp_getattro) != address(ffi::PyType_Type.tp_getattro) {
            return TypeReduce::Other;
        }
        // `type` itself cannot change, and finds `object`'s.
        if metaclass != &raw mut ffi::PyType_Type && _PyType_Lookup(metaclass, reduce_name.as_ptr()) != objects_reduce {
            return TypeReduce::Other;
        }
        TypeReduce::CallDirectly(Bound::from_borrowed_ptr(py, reduce))
    }
}

/// `object`'s own `__reduce__` and `__reduce_ex__`, as its MRO lookup
/// finds them. `object` is a static type whose attributes cannot be set,
/// so they are the same objects for the life of the process.
#[inline]
fn objects_methods(py: Python<'_>) -> (*mut ffi::PyObject, *mut ffi::PyObject) {
    static FOUND: PyOnceLock<(usize, usize)> = PyOnceLock::new();
    let (reduce, reduce_ex) = *FOUND.get_or_init(py, || {
        let object = &raw mut ffi::PyBaseObject_Type;
        // SAFETY: MRO lookups on a live static type with str names; the
        // borrowed results live in its dict as long as the process.
        unsafe {
            (
                _PyType_Lookup(object, intern!(py, "__reduce__").as_ptr()) as usize,
                _PyType_Lookup(object, intern!(py, "__reduce_ex__").as_ptr()) as usize,
            )
        }
    });
    (reduce as *mut ffi::PyObject, reduce_ex as *mut ffi::PyObject)
}

/// `function(obj)`, as the bound method `obj.__reduce__` would call it.
pub(super) fn call_own_reduce<'py>(
    function: &Bound<'py, PyAny>,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = [obj.as_ptr()];
    // SAFETY: a live callable and one live argument; a new reference or an
    // error set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            obj.py(),
            ffi::PyObject_Vectorcall(function.as_ptr(), args.as_ptr(), 1, std::ptr::null_mut()),
        )
    }
}
