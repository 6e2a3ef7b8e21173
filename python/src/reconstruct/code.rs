//! A function's code object from the arguments of `types.CodeType(...)`
//! that `new_function` receives.
//!
//! On 3.11 the fields go straight to `PyCode_NewWithPosOnlyArgs`, the C
//! constructor `CodeType(...)` itself ends in: a load then skips the
//! type's call, its argument parsing and the copies it makes of the four
//! name tuples. Fields of the exact types the compiler makes go that way,
//! with the `code.__new__` audit event raised as the type raises it; any
//! other field (an int subclass, a name that is a str subclass, a negative
//! count) goes to the type, which converts it or refuses it with its own
//! error. The constructor's signature
//! differs between 3.10, 3.11 and 3.12 (PyO3 declares 3.10's), so other
//! versions, and field tuples of another length (a pickle of another
//! version), keep the `CodeType(...)` call and its errors.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::{objects, version};

/// The code object the fields make, and its number of free variables.
pub(super) fn make_code<'py>(fields: &Bound<'py, PyTuple>) -> PyResult<(Bound<'py, PyAny>, usize)> {
    #[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
    if fields.len() == direct::FIELDS
        && let Some(made) = direct::make_code(fields)?
    {
        return Ok(made);
    }
    let code = objects::code_type(fields.py())?.call1(fields)?;
    Ok((code, free_var_count(fields)?))
}

/// How many free variables the code made from `fields` has: the length of
/// its `co_freevars` argument, which the constructor has just checked (a
/// tuple of strs), so the code's own (a tuple made afresh on each read)
/// need not be asked.
fn free_var_count(fields: &Bound<'_, PyTuple>) -> PyResult<usize> {
    let index = version::code_args(fields.py())
        .iter()
        .position(|name| *name == "co_freevars")
        .ok_or_else(|| PyValueError::new_err("this Python's CodeType has no co_freevars"))?;
    fields.get_item(index)?.len()
}

#[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
mod direct {
    use std::ffi::{c_char, c_int};

    use pyo3::ffi;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};

    unsafe extern "C" {
        // 3.11's signature (Include/cpython/code.h); PyO3 declares 3.10's
        // under this name, hence the Rust name of its own.
        #[link_name = "PyCode_NewWithPosOnlyArgs"]
        fn new_code_311(
            argcount: c_int,
            posonlyargcount: c_int,
            kwonlyargcount: c_int,
            nlocals: c_int,
            stacksize: c_int,
            flags: c_int,
            code: *mut ffi::PyObject,
            consts: *mut ffi::PyObject,
            names: *mut ffi::PyObject,
            varnames: *mut ffi::PyObject,
            freevars: *mut ffi::PyObject,
            cellvars: *mut ffi::PyObject,
            filename: *mut ffi::PyObject,
            name: *mut ffi::PyObject,
            qualname: *mut ffi::PyObject,
            firstlineno: c_int,
            linetable: *mut ffi::PyObject,
            exceptiontable: *mut ffi::PyObject,
        ) -> *mut ffi::PyCodeObject;

        // Stable ABI since 3.8; PyO3 does not declare it.
        fn PySys_Audit(event: *const c_char, format: *const c_char, ...) -> c_int;
    }

    /// `types.CodeType(...)`'s positional arguments on 3.11.
    pub(super) const FIELDS: usize = 18;

    // Their positions (`version::code_args`).
    const ARGCOUNT: usize = 0;
    const POSONLYARGCOUNT: usize = 1;
    const KWONLYARGCOUNT: usize = 2;
    const NLOCALS: usize = 3;
    const STACKSIZE: usize = 4;
    const FLAGS: usize = 5;
    const CODE: usize = 6;
    const CONSTS: usize = 7;
    const NAMES: usize = 8;
    const VARNAMES: usize = 9;
    const FILENAME: usize = 10;
    const NAME: usize = 11;
    const QUALNAME: usize = 12;
    const FIRSTLINENO: usize = 13;
    const LINETABLE: usize = 14;
    const EXCEPTIONTABLE: usize = 15;
    const FREEVARS: usize = 16;
    const CELLVARS: usize = 17;

    /// The code object and its number of free variables; None when a
    /// field is not of the exact type the compiler makes (or a count is out
    /// of the type's range), for `CodeType(...)` to convert it or refuse it
    /// with its own error.
    pub(super) fn make_code<'py>(fields: &Bound<'py, PyTuple>) -> PyResult<Option<(Bound<'py, PyAny>, usize)>> {
        let py = fields.py();
        // SAFETY: `fields` has FIELDS items (checked by the caller); each
        // is borrowed from the tuple, which outlives this call.
        let field = |index: usize| unsafe { fields.get_borrowed_item_unchecked(index) };
        let mut counts = [0; 6];
        for (count, index) in
            counts
                .iter_mut()
                .zip([ARGCOUNT, POSONLYARGCOUNT, KWONLYARGCOUNT, NLOCALS, STACKSIZE, FLAGS])
        {
            let Some(value) = small_int(&field(index)) else {
                return Ok(None);
            };
            *count = value;
        }
        let [argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags] = counts;
        // The type's own checks, which the C constructor leaves to a
        // SystemError: let the type raise its ValueError.
        if argcount < posonlyargcount || posonlyargcount < 0 || kwonlyargcount < 0 || nlocals < 0 {
            return Ok(None);
        }
        let Some(firstlineno) = small_int(&field(FIRSTLINENO)) else {
            return Ok(None);
        };
        let exact_bytes = [CODE, LINETABLE, EXCEPTIONTABLE]
            .iter()
            .all(|&index| field(index).is_exact_instance_of::<PyBytes>());
        let exact_strs = [FILENAME, NAME, QUALNAME]
            .iter()
            .all(|&index| field(index).is_exact_instance_of::<PyString>());
        if !exact_bytes || !exact_strs || !field(CONSTS).is_exact_instance_of::<PyTuple>() {
            return Ok(None);
        }
        let mut free_vars = 0;
        for index in [NAMES, VARNAMES, FREEVARS, CELLVARS] {
            let Some(count) = names_tuple(&field(index)) else {
                return Ok(None);
            };
            if index == FREEVARS {
                free_vars = count;
            }
        }
        audit(fields, counts)?;
        let raw = |index: usize| field(index).as_ptr();
        // SAFETY: every pointer is a live item of `fields`, of the type
        // the constructor expects (checked above); it borrows them and
        // returns a new reference, or null with an exception set.
        let code = unsafe {
            new_code_311(
                argcount,
                posonlyargcount,
                kwonlyargcount,
                nlocals,
                stacksize,
                flags,
                raw(CODE),
                raw(CONSTS),
                raw(NAMES),
                raw(VARNAMES),
                raw(FREEVARS),
                raw(CELLVARS),
                raw(FILENAME),
                raw(NAME),
                raw(QUALNAME),
                firstlineno,
                raw(LINETABLE),
                raw(EXCEPTIONTABLE),
            )
        };
        // SAFETY: a new reference or null with an exception set.
        let code = unsafe { Bound::from_owned_ptr_or_err(py, code.cast::<ffi::PyObject>())? };
        Ok(Some((code, free_vars)))
    }

    /// An exact int that fits a C int (read by the C API directly: the
    /// generic extraction cost twice as much, seven times a function).
    fn small_int(value: &Bound<'_, PyAny>) -> Option<c_int> {
        if !value.is_exact_instance_of::<PyInt>() {
            return None;
        }
        // SAFETY: `value` is an int; a failed conversion (overflow) sets
        // an exception, which is cleared: the type will raise its own.
        let wide = unsafe { ffi::PyLong_AsLong(value.as_ptr()) };
        if wide == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        c_int::try_from(wide).ok()
    }

    /// The length of a tuple of exact strs (the type copies other name
    /// tuples into such; the constructor would refuse them).
    fn names_tuple(value: &Bound<'_, PyAny>) -> Option<usize> {
        let names = value.cast_exact::<PyTuple>().ok()?;
        names
            .iter_borrowed()
            .all(|name| name.is_exact_instance_of::<PyString>())
            .then(|| names.len())
    }

    /// `code.__new__`, with the arguments `types.CodeType(...)` gives it.
    fn audit(fields: &Bound<'_, PyTuple>, counts: [c_int; 6]) -> PyResult<()> {
        let [argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags] = counts;
        // SAFETY: the format names three objects (borrowed items of
        // `fields`) and six C ints, passed in that order.
        let status = unsafe {
            PySys_Audit(
                c"code.__new__".as_ptr(),
                c"OOOiiiiii".as_ptr(),
                fields.get_borrowed_item_unchecked(CODE).as_ptr(),
                fields.get_borrowed_item_unchecked(FILENAME).as_ptr(),
                fields.get_borrowed_item_unchecked(NAME).as_ptr(),
                argcount,
                posonlyargcount,
                kwonlyargcount,
                nlocals,
                stacksize,
                flags,
            )
        };
        if status < 0 {
            return Err(PyErr::fetch(fields.py()));
        }
        Ok(())
    }
}
