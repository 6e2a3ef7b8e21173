//! Builtin functions and methods (`builtin_function_or_method`), reduced
//! as their `__reduce_ex__` reduces them, without calling it.
//!
//! The type is static and immutable, so its `__reduce_ex__` is always
//! `object`'s, which calls the type's own `__reduce__`: the function's name
//! when it is bound to nothing or to a module (a global), else
//! `(getattr, (self, name))` with `getattr` found in the running frame's
//! builtins. Calling that through Python (a bound method made and called
//! twice, the tuple built by format) cost an enum's `_new_member_`
//! (`object.__new__`) ~4k a dump. These are CPython 3.11's steps; on other
//! versions `__reduce_ex__` is called as before.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::version;

/// What `obj.__reduce_ex__(protocol)` returns when `obj` is exactly a
/// builtin function or method; None for anything else (or where this is
/// not sure to be that), which is then asked as before.
pub(super) fn reduction<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    // SAFETY: an exact type check on a live object.
    let exact = unsafe { ffi::Py_TYPE(obj.as_ptr()) == &raw mut ffi::PyCFunction_Type };
    if !exact || version::running(py) != (3, 11) {
        return Ok(None);
    }
    // SAFETY: an exact builtin function's layout is `PyCFunctionObject`;
    // its method definition and name live as long as the function.
    let (owner, name) = unsafe {
        let function = &*obj.as_ptr().cast::<ffi::PyCFunctionObject>();
        // Decoded as the reduction decodes it (a new str, or an error).
        let name = Bound::from_owned_ptr_or_err(py, ffi::PyUnicode_FromString((*function.m_ml).ml_name))?;
        (Bound::from_borrowed_ptr_or_opt(py, function.m_self), name)
    };
    let owner = match owner {
        // SAFETY: a type check on a live object.
        Some(owner) if unsafe { ffi::PyModule_Check(owner.as_ptr()) } == 0 => owner,
        _ => return Ok(Some(name)),
    };
    let Some(getattr) = builtins_getattr(py)? else {
        return Ok(None);
    };
    let args = PyTuple::new(py, [owner, name])?;
    Ok(Some(PyTuple::new(py, [getattr, args.into_any()])?.into_any()))
}

/// `getattr` from the running frame's builtins, where the reduction finds
/// it; None when it is not there (the old way then raises its error).
fn builtins_getattr(py: Python<'_>) -> PyResult<Option<Bound<'_, PyAny>>> {
    // SAFETY: attached; a borrowed dict (or null without a frame), made
    // strong at once.
    let builtins = unsafe { Bound::from_borrowed_ptr_or_opt(py, ffi::PyEval_GetBuiltins()) };
    match builtins.and_then(|builtins| builtins.cast_into::<PyDict>().ok()) {
        Some(builtins) => builtins.get_item(intern!(py, "getattr")),
        None => Ok(None),
    }
}
