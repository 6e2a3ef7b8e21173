//! Objects whose class defines `__reduce__` as a Python function and keeps
//! `object`'s `__reduce_ex__`: a `Fraction`, and most classes that choose
//! their own pickled form. For them `obj.__reduce_ex__(protocol)` makes a
//! bound method, and `object.__reduce_ex__` then makes a second one for
//! `obj.__reduce__`, reads `type(obj).__reduce__` to see that it is not
//! `object`'s, and calls the bound method, which calls the function with
//! `obj`: three calls and ~0.6k instructions before the function runs.
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

unsafe extern "C" {
    // Exported by CPython (the MRO lookup through the method cache, no
    // descriptor called, borrowed result, no exception set on a miss); not
    // declared by pyo3.
    fn _PyType_Lookup(kind: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// Off only in tests, which compare this call with the old way's.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the direct call of a class's own `__reduce__` on or off; returns
/// whether it was on. For tests that compare it with `__reduce_ex__`.
#[pyfunction]
pub(crate) fn set_own_reduce_calls(enabled: bool) -> bool {
    ENABLED.swap(enabled, Ordering::Relaxed)
}

/// The function that `obj.__reduce_ex__(protocol)` is certain to call with
/// `obj` alone and return the result of; None when anything could make it
/// do otherwise (`__reduce_ex__` asked as before).
///
/// Certain when: `obj`'s type has the generic attribute lookup and no
/// instance dict, so both names are found on its MRO; that MRO gives
/// `object`'s `__reduce_ex__` and a plain function as `__reduce__`, which
/// binds to `obj` and is what `type(obj).__reduce__` gives back as well;
/// and the metaclass looks attributes up as `type` does and finds
/// `object`'s `__reduce__` (no data descriptor that `type(obj).__reduce__`
/// would call instead). The lookups run no Python code.
pub(super) fn own_reduce_function<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    let py = obj.py();
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    let reduce_name = intern!(py, "__reduce__");
    let reduce_ex_name = intern!(py, "__reduce_ex__");
    let address = |slot: Option<ffi::getattrofunc>| slot.map(|f| f as usize);
    // SAFETY: field reads and MRO lookups on live types with str names;
    // the borrowed results are compared by address, and the one kept is
    // made strong before anything else runs.
    unsafe {
        let kind = ffi::Py_TYPE(obj.as_ptr());
        if address((*kind).tp_getattro) != address(Some(ffi::PyObject_GenericGetAttr)) {
            return None;
        }
        let reduce = _PyType_Lookup(kind, reduce_name.as_ptr());
        // Asked first: it turns away the default-reduced objects, which
        // find `object`'s own method here.
        if reduce.is_null() || ffi::Py_TYPE(reduce) != &raw mut ffi::PyFunction_Type {
            return None;
        }
        if (*kind).tp_dictoffset != 0 {
            return None;
        }
        let object = &raw mut ffi::PyBaseObject_Type;
        if _PyType_Lookup(kind, reduce_ex_name.as_ptr()) != _PyType_Lookup(object, reduce_ex_name.as_ptr()) {
            return None;
        }
        let metaclass = ffi::Py_TYPE(kind.cast::<ffi::PyObject>());
        if address((*metaclass).tp_getattro) != address(ffi::PyType_Type.tp_getattro) {
            return None;
        }
        // `type` itself cannot change, and finds `object`'s.
        if metaclass != &raw mut ffi::PyType_Type
            && _PyType_Lookup(metaclass, reduce_name.as_ptr()) != _PyType_Lookup(object, reduce_name.as_ptr())
        {
            return None;
        }
        Some(Bound::from_borrowed_ptr(py, reduce))
    }
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
