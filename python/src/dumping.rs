//! `flightpickle.dumps` and `flightpickle.dump`: the native writer, and
//! `flightpickle.Pickler` for what it declines.
//!
//! They are native so that a call pays no Python frame on the way to the
//! writer (a Python wrapper cost ~700 instructions a call, a sixth of
//! `pickle.dumps(None)`), and raw `METH_FASTCALL | METH_KEYWORDS` functions
//! that read their arguments themselves (`arguments.rs`): PyO3's generated
//! parsing cost ~0.26k instructions a call more (`dumps(None)`, whole
//! call). What is rare stays in Python, in the package's namespace:
//! `_dumps_by_pickler` and `_dump_by_pickler` for declined dumps,
//! `_pickling_failed` to explain a failure.

use std::ffi::CStr;

use pyo3::exceptions::{PyException, PySystemError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString};

use crate::arguments::{self, Signature, optional};
use crate::writer::{self, FastPathDeclined};

/// The `flightpickle` package's namespace, given once at its import.
static PACKAGE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// Called once by `flightpickle/__init__.py` with its `globals()`.
#[pyfunction]
pub(crate) fn use_package_namespace(namespace: &Bound<'_, PyDict>) {
    let _ = PACKAGE.set(namespace.py(), namespace.clone().unbind());
}

const DUMPS: Signature<4> = Signature {
    function: "dumps",
    names: ["obj", "protocol", "buffer_callback", "target"],
    positional: 3,
    required: 1,
};

const DUMP: Signature<5> = Signature {
    function: "dump",
    names: ["obj", "file", "protocol", "buffer_callback", "target"],
    positional: 4,
    required: 2,
};

const DUMPS_DOC: &CStr = c"dumps(obj, protocol=None, buffer_callback=None, *, target=None)
--

Pickle ``obj`` to bytes, functions and classes by value where needed.";

const DUMP_DOC: &CStr = c"dump(obj, file, protocol=None, buffer_callback=None, *, target=None)
--

Pickle ``obj`` into ``file``, functions and classes by value where needed.";

/// Adds `dumps` and `dump` to `module` (the extension module).
pub(crate) fn add_to(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("dumps", arguments::builtin(module, c"dumps", dumps_entry, DUMPS_DOC)?)?;
    module.add("dump", arguments::builtin(module, c"dump", dump_entry, DUMP_DOC)?)?;
    Ok(())
}

/// `dumps(obj, protocol=None, buffer_callback=None, *, target=None)`.
unsafe extern "C" fn dumps_entry(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by the interpreter as a fastcall function.
    unsafe {
        arguments::call(
            args,
            nargs,
            kwnames,
            &DUMPS,
            |[obj, protocol, buffer_callback, target]| {
                // `required` is 1: the parser has checked that `obj` is there.
                let obj = obj.expect("a required argument");
                dumps(&obj, optional(protocol), optional(buffer_callback), optional(target))
            },
        )
    }
}

/// `dump(obj, file, protocol=None, buffer_callback=None, *, target=None)`.
unsafe extern "C" fn dump_entry(
    _module: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by the interpreter as a fastcall function.
    unsafe {
        arguments::call(
            args,
            nargs,
            kwnames,
            &DUMP,
            |[obj, file, protocol, buffer_callback, target]| {
                // `required` is 2: the parser has checked that both are there.
                let (obj, file) = (obj.expect("a required argument"), file.expect("a required argument"));
                dump(
                    &obj,
                    &file,
                    optional(protocol),
                    optional(buffer_callback),
                    optional(target),
                )
            },
        )
    }
}

/// Pickle ``obj`` to bytes, functions and classes by value where needed.
fn dumps<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<Bound<'py, PyAny>>,
    buffer_callback: Option<Bound<'py, PyAny>>,
    target: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let call = Call {
        obj,
        protocol,
        buffer_callback,
        target,
    };
    match call.write(None) {
        Ok(bytes) => Ok(bytes.map_or_else(|| obj.py().None().into_bound(obj.py()), Bound::into_any)),
        Err(err) => call.after_failure(err, intern!(obj.py(), "_dumps_by_pickler"), None),
    }
}

/// Pickle ``obj`` into ``file``, functions and classes by value where needed.
fn dump<'py>(
    obj: &Bound<'py, PyAny>,
    file: &Bound<'py, PyAny>,
    protocol: Option<Bound<'py, PyAny>>,
    buffer_callback: Option<Bound<'py, PyAny>>,
    target: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let call = Call {
        obj,
        protocol,
        buffer_callback,
        target,
    };
    // None is no file: the writer would take it for "to bytes".
    let written = if file.is_none() {
        Err(FastPathDeclined::new_err("no file"))
    } else {
        call.write(Some(file))
    };
    match written {
        Ok(_) => Ok(py.None().into_bound(py)),
        Err(err) => call.after_failure(err, intern!(py, "_dump_by_pickler"), Some(file)),
    }
}

/// The arguments that `dumps` and `dump` share.
struct Call<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    protocol: Option<Bound<'py, PyAny>>,
    buffer_callback: Option<Bound<'py, PyAny>>,
    target: Option<Bound<'py, PyAny>>,
}

impl<'py> Call<'_, 'py> {
    fn write(&self, file: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Bound<'py, pyo3::types::PyBytes>>> {
        let py = self.obj.py();
        // The package's DEFAULT_PROTOCOL is read at each call, as Pickler
        // reads it, so a program that lowers it is obeyed here too.
        let protocol = match &self.protocol {
            Some(protocol) if !protocol.is_none() => protocol.clone(),
            _ => package(py)?
                .get_item(intern!(py, "DEFAULT_PROTOCOL"))?
                .ok_or_else(|| PySystemError::new_err("flightpickle.DEFAULT_PROTOCOL is gone"))?,
        };
        let target = match &self.target {
            Some(target) if !target.is_none() => Some(target.cast::<PyString>()?.to_str()?),
            _ => None,
        };
        writer::fast_dump(self.obj, Some(&protocol), self.buffer_callback.clone(), target, file)
    }

    /// A declined dump goes through `Pickler` (the package's `helper`); any
    /// other exception becomes one that says where in `obj` it happened.
    fn after_failure(
        &self,
        err: PyErr,
        helper: &Bound<'py, PyString>,
        file: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.obj.py();
        let none = || py.None().into_bound(py);
        let protocol = self.protocol.clone().unwrap_or_else(none);
        let buffer_callback = self.buffer_callback.clone().unwrap_or_else(none);
        let target = self.target.clone().unwrap_or_else(none);
        if err.is_instance_of::<FastPathDeclined>(py) {
            let helper = package_item(py, helper)?;
            return match file {
                None => helper.call1((self.obj, protocol, buffer_callback, target)),
                Some(file) => helper.call1((self.obj, file, protocol, buffer_callback, target)),
            };
        }
        // Interrupts and exits pass through as they are.
        if !err.is_instance_of::<PyException>(py) {
            return Err(err);
        }
        let explain = package_item(py, intern!(py, "_pickling_failed"))?;
        explain.call1((err.value(py), self.obj, protocol))?;
        Err(err)
    }
}

fn package(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    PACKAGE
        .get(py)
        .map(|namespace| namespace.bind(py))
        .ok_or_else(|| PySystemError::new_err("flightpickle is not initialised"))
}

fn package_item<'py>(py: Python<'py>, name: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    package(py)?
        .get_item(name)?
        .ok_or_else(|| PySystemError::new_err(format!("flightpickle.{name} is gone")))
}
