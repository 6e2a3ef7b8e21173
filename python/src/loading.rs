//! `flightpickle.loads` and `flightpickle.load`: `pickle.loads` and
//! `pickle.load`, called with the very arguments they were given, plus a
//! hint when a module the pickle names is missing.
//!
//! They are raw `METH_FASTCALL | METH_KEYWORDS` functions that hand their
//! argument vector and keyword names on untouched: pickle parses them once,
//! with its own checks and messages, so a call costs what `pickle.loads`
//! costs plus one C call. A Python wrapper (a frame, and a second keyword
//! parse) cost ~1.3k instructions a call, and a PyO3 signature more.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::arguments::builtin_owned_by;

/// `pickle.loads` and `pickle.load`, bound once (as a Python module binds
/// a name it imports).
static PICKLE: [PyOnceLock<Py<PyAny>>; 2] = [PyOnceLock::new(), PyOnceLock::new()];
const LOADS: usize = 0;
const LOAD: usize = 1;

const LOADS_DOC: &CStr = c"loads($module, data, /, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())
--

``pickle.loads``, with a hint when a module the pickle names is missing.";

const LOAD_DOC: &CStr = c"load($module, file, *, fix_imports=True, encoding='ASCII', errors='strict', buffers=())
--

``pickle.load``, with a hint when a module the pickle names is missing.";

/// Adds `loads` and `load` to `module` (the extension module: a builtin
/// bound to a module pickles by reference, as `flightpickle.loads`).
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let pickle = py.import("pickle")?;
    let _ = PICKLE[LOADS].set(py, pickle.getattr("loads")?.unbind());
    let _ = PICKLE[LOAD].set(py, pickle.getattr("load")?.unbind());
    let owner = intern!(py, "flightpickle");
    module.add(
        "loads",
        builtin_owned_by(module, owner, c"loads", forward_to::<LOADS>, LOADS_DOC)?,
    )?;
    module.add(
        "load",
        builtin_owned_by(module, owner, c"load", forward_to::<LOAD>, LOAD_DOC)?,
    )?;
    Ok(())
}

/// `pickle.loads` or `pickle.load` (`TARGET` indexes `PICKLE`), called
/// as the interpreter called us.
unsafe extern "C" fn forward_to<const TARGET: usize>(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by the interpreter, attached, with a valid vector.
    unsafe { forward(&PICKLE[TARGET], args, nargs, kwnames) }
}

/// # Safety
/// The caller is attached to the interpreter, and `args`, `nargs` and
/// `kwnames` are a vectorcall's arguments as the interpreter passed them.
unsafe fn forward(
    target: &PyOnceLock<Py<PyAny>>,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: the interpreter calls us attached.
    let py = unsafe { Python::assume_attached() };
    let Some(target) = target.get(py) else {
        // SAFETY: attached; sets an exception for the null return.
        unsafe { ffi::PyErr_SetString(ffi::PyExc_SystemError, c"flightpickle's loader is not set up".as_ptr()) };
        return std::ptr::null_mut();
    };
    // SAFETY: the vector and keyword names are passed on unchanged; a
    // fastcall function's `nargs` carries no flags.
    let result = unsafe { ffi::PyObject_Vectorcall(target.as_ptr(), args, nargs as usize, kwnames) };
    // SAFETY: attached; only reads the current exception's type.
    if result.is_null() && unsafe { ffi::PyErr_ExceptionMatches(ffi::PyExc_ModuleNotFoundError) } != 0 {
        // A panic must not unwind into the interpreter. If the hint cannot
        // be made the original error is raised; a panic once it was fetched
        // leaves none set, which the interpreter reports as a SystemError.
        let _ = catch_unwind(AssertUnwindSafe(|| replace_with_hint(py)));
    }
    result
}

/// Replaces the current ModuleNotFoundError by one that says how to make
/// the pickle loadable, raised from it (as `raise hint from error`).
fn replace_with_hint(py: Python<'_>) {
    let error = PyErr::fetch(py);
    match hint(py, &error) {
        Ok(hint) => {
            // SAFETY: both are exception instances; each call steals a
            // new reference.
            unsafe {
                ffi::PyException_SetContext(hint.as_ptr(), error.value(py).clone().into_ptr());
                ffi::PyException_SetCause(hint.as_ptr(), error.value(py).clone().into_ptr());
            }
            PyErr::from_value(hint).restore(py);
        }
        // Without a hint, the original error is still the right one.
        Err(_) => error.restore(py),
    }
}

fn hint<'py>(py: Python<'py>, error: &PyErr) -> PyResult<Bound<'py, PyAny>> {
    let hint = py
        .import("flightpickle._errors")?
        .call_method1("missing_module_error", (error.value(py),))?;
    if hint.is_instance_of::<pyo3::exceptions::PyBaseException>() {
        Ok(hint)
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "missing_module_error returned no exception",
        ))
    }
}
