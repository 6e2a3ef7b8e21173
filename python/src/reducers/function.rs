//! Functions that cannot travel by reference: lambdas, local functions,
//! functions of `__main__` or of modules registered for by-value.
//!
//! The pickle makes a skeleton first (code, a globals dict shared by the
//! functions of one module, a closure of empty cells) and fills it from the
//! state afterwards, so a closure cell may refer back to the function.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::call_then_set;
use crate::byvalue;
use crate::code_globals::{imported_submodules, used_globals};
use crate::pickler::PicklerState;
use crate::reconstruct::cell_contents;

/// Keys of a module's globals that make relative imports work in the copy.
const MODULE_IDENTITY: [&str; 4] = ["__package__", "__name__", "__path__", "__file__"];

pub(crate) fn reduce<'py>(pickler: &PicklerState, func: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = func.py();
    if byvalue::by_reference(func)? {
        return Ok(py.NotImplemented().into_bound(py));
    }
    let names = pickler.reconstructors();
    let parts = Parts::of(func)?;
    let skeleton = skeleton_args(pickler, &parts)?;
    let state = state(func, &parts)?;
    call_then_set(
        names.make_function.bind(py),
        skeleton,
        state,
        names.function_setstate.bind(py),
    )
}

/// The function's fixed parts, read through the C API.
struct Parts<'py> {
    code: Bound<'py, PyAny>,
    globals: Bound<'py, PyDict>,
    closure: Option<Bound<'py, PyTuple>>,
}

impl<'py> Parts<'py> {
    fn of(func: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = func.py();
        // SAFETY: `func` is a function (checked by the caller); the getters
        // return borrowed references that `func` keeps alive.
        unsafe {
            let code = Bound::from_borrowed_ptr(py, ffi::PyFunction_GetCode(func.as_ptr()));
            let globals = Bound::from_borrowed_ptr(py, ffi::PyFunction_GetGlobals(func.as_ptr()));
            let closure = Bound::from_borrowed_ptr_or_opt(py, ffi::PyFunction_GetClosure(func.as_ptr()));
            Ok(Self {
                code,
                globals: globals.cast_into::<PyDict>()?,
                closure: closure.map(|c| c.cast_into::<PyTuple>()).transpose()?,
            })
        }
    }
}

/// `(code, shared_globals, None, None, empty_cells)` for `make_function`.
fn skeleton_args<'py>(pickler: &PicklerState, parts: &Parts<'py>) -> PyResult<Bound<'py, PyAny>> {
    let py = parts.code.py();
    let (shared, fresh) = pickler.shared_globals(&parts.globals);
    if fresh || shared.is_empty() {
        for key in MODULE_IDENTITY {
            if let Some(value) = parts.globals.get_item(key)? {
                shared.set_item(key, value)?;
            }
        }
    }
    let closure = match &parts.closure {
        None => py.None().into_bound(py),
        Some(cells) => {
            let empty = pickler.reconstructors().make_empty_cell.bind(py);
            let cells = (0..cells.len()).map(|_| empty.call0()).collect::<PyResult<Vec<_>>>()?;
            PyTuple::new(py, cells)?.into_any()
        }
    };
    let none = py.None().into_bound(py);
    Ok(PyTuple::new(py, [parts.code.clone(), shared.into_any(), none.clone(), none, closure])?.into_any())
}

/// `(func.__dict__ copy, slots)`: the attributes `setattr` can restore plus
/// the globals the code uses, the real cells and the submodules to import.
fn state<'py>(func: &Bound<'py, PyAny>, parts: &Parts<'py>) -> PyResult<Bound<'py, PyAny>> {
    let py = func.py();
    let slots = PyDict::new(py);
    slots.set_item(
        intern!(py, "__name__"),
        fresh_str(&func.getattr(intern!(py, "__name__"))?)?,
    )?;
    slots.set_item(
        intern!(py, "__qualname__"),
        fresh_str(&func.getattr(intern!(py, "__qualname__"))?)?,
    )?;
    for name in [
        "__annotations__",
        "__kwdefaults__",
        "__defaults__",
        "__module__",
        "__doc__",
    ] {
        slots.set_item(name, func.getattr(name)?)?;
    }
    slots.set_item(
        intern!(py, "__closure__"),
        parts
            .closure
            .as_ref()
            .map_or_else(|| py.None().into_bound(py), |c| c.clone().into_any()),
    )?;
    let globals = used_globals(&parts.code, &parts.globals)?;
    let mut closure_values = Vec::new();
    if let Some(cells) = &parts.closure {
        for cell in cells.iter() {
            closure_values.extend(cell_contents(&cell)?);
        }
    }
    let dependencies = globals.values().into_iter().chain(closure_values);
    slots.set_item(
        intern!(py, "_cloudpickle_submodules"),
        imported_submodules(&parts.code, dependencies)?,
    )?;
    slots.set_item(intern!(py, "__globals__"), globals)?;
    let attrs = PyDict::new(py);
    let own = func.getattr(intern!(py, "__dict__"))?.cast_into::<PyDict>()?;
    for (key, value) in own.iter() {
        attrs.set_item(fresh_str(&key)?, value)?;
    }
    Ok(PyTuple::new(py, [attrs.into_any(), slots.into_any()])?.into_any())
}

/// A copy of a str that is not the interned one, so that memoization, and
/// with it the pickle bytes, do not depend on what the process interned.
pub(crate) fn fresh_str<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match value.cast::<PyString>() {
        Ok(text) => Ok(PyString::new(value.py(), text.to_str()?).into_any()),
        Err(_) => Ok(value.clone()),
    }
}
