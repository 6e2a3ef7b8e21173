//! The arguments of a raw `METH_FASTCALL | METH_KEYWORDS` function, read
//! by hand for a fixed signature: positional-or-keyword parameters, then
//! keyword-only ones, none with a default other than None. The checks and
//! the messages are those of a PyO3 signature, which the module-level
//! `dumps` and `dump` had before; the parse costs a fraction of PyO3's.

use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

/// A function's parameters: `names` holds the first `positional` ones,
/// which may also be given by keyword, then the keyword-only ones; the
/// first `required` must be given.
pub(crate) struct Signature<const N: usize> {
    pub(crate) function: &'static str,
    pub(crate) names: [&'static str; N],
    pub(crate) positional: usize,
    pub(crate) required: usize,
}

/// The arguments by parameter, None where none was given.
pub(crate) type Arguments<'py, const N: usize> = [Option<Bound<'py, PyAny>>; N];

/// Reads the arguments for `signature` and calls `body` with them; returns
/// what a fastcall function returns: a new reference, or null with an
/// exception set. A panic in `body` becomes a `PanicException`, as PyO3's
/// functions raise.
///
/// # Safety
/// The caller is attached to the interpreter, and `args`, `nargs` and
/// `kwnames` are a fastcall function's arguments as the interpreter passed them.
pub(crate) unsafe fn call<const N: usize>(
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    signature: &Signature<N>,
    body: impl for<'py> FnOnce(Arguments<'py, N>) -> PyResult<Bound<'py, PyAny>>,
) -> *mut ffi::PyObject {
    // `attach` (on a thread the interpreter has just called from: no real
    // attaching) makes PyO3 count this thread as attached for the call, as
    // its own functions do: without it every `Py` dropped in the writer would
    // wait in PyO3's pool of deferred decrefs instead of being released.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        Python::attach(|py| {
            // SAFETY: the caller's contract.
            let result = unsafe { read(py, args, nargs, kwnames, signature) }.and_then(body);
            into_return_value(py, result)
        })
    }));
    outcome.unwrap_or_else(|payload| {
        // SAFETY: the interpreter calls fastcall functions attached.
        let py = unsafe { Python::assume_attached() };
        into_return_value(py, Err(panic_error(payload.as_ref())))
    })
}

/// A fastcall function's return value: a new reference, or null with the
/// exception set.
fn into_return_value(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> *mut ffi::PyObject {
    match result {
        Ok(value) => value.into_ptr(),
        Err(err) => {
            err.restore(py);
            std::ptr::null_mut()
        }
    }
}

/// The `PanicException` for a caught panic, with its message when it had one.
#[cold]
fn panic_error(payload: &(dyn std::any::Any + Send)) -> PyErr {
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(text), _) => (*text).to_owned(),
        (_, Some(text)) => text.clone(),
        _ => "panic from Rust code".to_owned(),
    };
    PanicException::new_err(message)
}

/// A builtin function of `module`, made from a raw fastcall definition,
/// whose `__module__` is the module's name (as PyO3 names its functions).
pub(crate) fn builtin<'py>(
    module: &Bound<'py, PyModule>,
    name: &'static CStr,
    function: ffi::PyCFunctionFastWithKeywords,
    doc: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    builtin_owned_by(module, &module.name()?, name, function, doc)
}

/// [`builtin`] with `owner` as its `__module__`: the name it pickles under.
pub(crate) fn builtin_owned_by<'py>(
    module: &Bound<'py, PyModule>,
    owner: &Bound<'py, PyString>,
    name: &'static CStr,
    function: ffi::PyCFunctionFastWithKeywords,
    doc: &'static CStr,
) -> PyResult<Bound<'py, PyAny>> {
    let py = module.py();
    // The definition must outlive the function object: made once per
    // module initialisation, which happens once per process.
    let definition = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunctionFastWithKeywords: function,
        },
        ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: a leaked (so static) definition, a live module and a str;
    // the call returns a new reference or null with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyCMethod_New(definition, module.as_ptr(), owner.as_ptr(), std::ptr::null_mut()),
        )
    }
}

/// The arguments for `signature`, or the `TypeError` a PyO3 signature
/// raises: too many positional arguments first, then the keywords in the
/// order given, then what is missing.
///
/// # Safety
/// As for `call`.
unsafe fn read<'py, const N: usize>(
    py: Python<'py>,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    signature: &Signature<N>,
) -> PyResult<Arguments<'py, N>> {
    let given = usize::try_from(nargs).map_err(|_| PyValueError::new_err("a negative argument count"))?;
    if given > signature.positional {
        return Err(signature.too_many_positional(given));
    }
    let mut arguments: Arguments<'py, N> = std::array::from_fn(|_| None);
    for (index, argument) in arguments.iter_mut().take(given).enumerate() {
        // SAFETY: the vector holds `nargs` live positional arguments.
        *argument = Some(unsafe { Bound::from_borrowed_ptr(py, *args.add(index)) });
    }
    // SAFETY: null, or the tuple of keyword names, whose values follow the
    // positional arguments in the vector.
    if let Some(names) = unsafe { Borrowed::from_ptr_or_opt(py, kwnames) } {
        let names = names.cast::<PyTuple>()?;
        for (offset, name) in names.iter_borrowed().enumerate() {
            let index = signature.parameter(&name)?;
            // SAFETY: as above, the keywords' values come after the positionals.
            let value = unsafe { Bound::from_borrowed_ptr(py, *args.add(given + offset)) };
            if arguments[index].replace(value).is_some() {
                return Err(signature.multiple_values(index));
            }
        }
    }
    if arguments[..signature.required].iter().any(Option::is_none) {
        return Err(signature.missing(&arguments));
    }
    Ok(arguments)
}

/// `value`, or None where it is Python's None (as PyO3 reads an optional
/// argument).
pub(crate) fn optional(value: Option<Bound<'_, PyAny>>) -> Option<Bound<'_, PyAny>> {
    value.filter(|value| !value.is_none())
}

impl<const N: usize> Signature<N> {
    /// The index of the parameter a keyword names.
    fn parameter(&self, keyword: &Borrowed<'_, '_, PyAny>) -> PyResult<usize> {
        let name = keyword.cast::<PyString>().ok();
        let text = name.as_ref().and_then(|name| name.to_str().ok());
        text.and_then(|text| self.names.iter().position(|name| *name == text))
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "{}() got an unexpected keyword argument '{}'",
                    self.function,
                    keyword.as_any()
                ))
            })
    }

    #[cold]
    fn too_many_positional(&self, given: usize) -> PyErr {
        let was = if given == 1 { "was" } else { "were" };
        let takes = if self.required == self.positional {
            format!("{}", self.positional)
        } else {
            format!("from {} to {}", self.required, self.positional)
        };
        PyTypeError::new_err(format!(
            "{}() takes {takes} positional arguments but {given} {was} given",
            self.function
        ))
    }

    #[cold]
    fn multiple_values(&self, index: usize) -> PyErr {
        PyTypeError::new_err(format!(
            "{}() got multiple values for argument '{}'",
            self.function, self.names[index]
        ))
    }

    #[cold]
    fn missing(&self, arguments: &Arguments<'_, N>) -> PyErr {
        let missing: Vec<&str> = self.names[..self.required]
            .iter()
            .zip(arguments)
            .filter(|(_, argument)| argument.is_none())
            .map(|(name, _)| *name)
            .collect();
        let plural = if missing.len() == 1 { "argument" } else { "arguments" };
        PyTypeError::new_err(format!(
            "{}() missing {} required positional {plural}: {}",
            self.function,
            missing.len(),
            name_list(&missing)
        ))
    }
}

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: as Python lists parameters.
fn name_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} and {second}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_listed_as_python_lists_them() {
        assert_eq!(name_list(&["obj"]), "'obj'");
        assert_eq!(name_list(&["obj", "file"]), "'obj' and 'file'");
        assert_eq!(name_list(&["a", "b", "c"]), "'a', 'b', and 'c'");
    }
}
