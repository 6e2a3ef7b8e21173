//! Functions that cannot travel by reference: lambdas, local functions,
//! functions of `__main__` or of modules registered for by-value.
//!
//! The pickle makes a skeleton first (code, a globals dict shared by the
//! functions of one module, a closure of empty cells) and fills it from the
//! state afterwards, so a closure cell may refer back to the function.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

use super::call_then_set;
use crate::byvalue;
use crate::code_globals::{imported_submodules, used_globals};
use crate::pickler::PicklerState;
use crate::reconstruct::{cell_contents, new_cell};

/// Keys of a module's globals that make relative imports work in the copy,
/// as Python strings made once (a `&str` key is made and hashed per use).
pub(crate) fn module_identity(py: Python<'_>) -> [&Bound<'_, PyString>; 4] {
    [
        intern!(py, "__package__"),
        intern!(py, "__name__"),
        intern!(py, "__path__"),
        intern!(py, "__file__"),
    ]
}

/// A bit of a module identity's `present` bits (see `new_function`'s
/// `identity`): `__package__` is not sent but derived from `__name__`, as
/// the import system sets it (see `package_of`).
pub(crate) const PACKAGE_FROM_NAME: u8 = 1 << 4;

/// The `__package__` the import system gives a module named `name`: the
/// name itself for a package (a module with `__path__`), else all before
/// its last dot ("" for a top-level module).
pub(crate) fn package_of(name: &str, has_path: bool) -> &str {
    if has_path {
        return name;
    }
    name.rsplit_once('.').map_or("", |(package, _)| package)
}

pub(crate) fn reduce<'py>(pickler: &PicklerState, func: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = func.py();
    if byvalue::by_reference(func)? {
        return Ok(py.NotImplemented().into_bound(py));
    }
    let names = pickler.reconstructors();
    let parts = Parts::of(func)?;
    let skeleton = skeleton_args(pickler, &parts)?;
    let state = state(pickler, func, &parts)?;
    call_then_set(
        names.make_function.bind(py),
        skeleton,
        state,
        names.function_setstate.bind(py),
    )
}

/// The function's fixed parts, read through the C API.
pub(crate) struct Parts<'py> {
    pub(crate) code: Bound<'py, PyAny>,
    pub(crate) globals: Bound<'py, PyDict>,
    pub(crate) closure: Option<Bound<'py, PyTuple>>,
}

impl<'py> Parts<'py> {
    pub(crate) fn of(func: &Bound<'py, PyAny>) -> PyResult<Self> {
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
    let shared = module_globals(pickler, parts)?;
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

/// The dict that stands for the function's globals in the pickle, shared
/// by the functions of one module: at first only the keys that make
/// relative imports work in the copy; each function's state adds the
/// globals it uses.
pub(crate) fn module_globals<'py>(pickler: &PicklerState, parts: &Parts<'py>) -> PyResult<Bound<'py, PyDict>> {
    let (shared, fresh) = pickler.shared_globals(&parts.globals);
    if fresh || shared.is_empty() {
        for key in module_identity(parts.globals.py()) {
            if let Some(value) = parts.globals.get_item(key)? {
                shared.set_item(key, value)?;
            }
        }
    }
    Ok(shared)
}

/// `(func.__dict__ copy, slots)`: the attributes `setattr` can restore plus
/// the globals the code uses, the real cells and the submodules to import.
fn state<'py>(pickler: &PicklerState, func: &Bound<'py, PyAny>, parts: &Parts<'py>) -> PyResult<Bound<'py, PyAny>> {
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
    // Interned names throughout: a `&str` key or attribute name would
    // make and hash a new Python string on every dump.
    let annotations = intern!(py, "__annotations__");
    slots.set_item(annotations, func.getattr(annotations)?)?;
    let kwdefaults = intern!(py, "__kwdefaults__");
    slots.set_item(kwdefaults, stable_dict(pickler, func.getattr(kwdefaults)?)?)?;
    let defaults = func.getattr(intern!(py, "__defaults__"))?;
    let defaults = match defaults.cast::<PyTuple>() {
        Ok(items) => PyTuple::new(
            py,
            items.iter().map(|d| pickler.stable(&d)).collect::<PyResult<Vec<_>>>()?,
        )?
        .into_any(),
        Err(_) => defaults,
    };
    slots.set_item(intern!(py, "__defaults__"), defaults)?;
    let module = intern!(py, "__module__");
    slots.set_item(module, func.getattr(module)?)?;
    let doc = intern!(py, "__doc__");
    slots.set_item(doc, func.getattr(doc)?)?;
    let closure = match &parts.closure {
        Some(cells) => stable_cells(pickler, cells)?,
        None => py.None().into_bound(py),
    };
    slots.set_item(intern!(py, "__closure__"), closure)?;
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
        PyList::new(py, imported_submodules(&parts.code, dependencies)?)?,
    )?;
    slots.set_item(intern!(py, "__globals__"), stable_dict(pickler, globals.into_any())?)?;
    let attrs = PyDict::new(py);
    let own = func.getattr(intern!(py, "__dict__"))?.cast_into::<PyDict>()?;
    for (key, value) in own.iter() {
        attrs.set_item(fresh_str(&key)?, pickler.stable(&value)?)?;
    }
    Ok(PyTuple::new(py, [attrs.into_any(), slots.into_any()])?.into_any())
}

/// The closure's cells, with a new cell where the content is a set of
/// strings to write sorted; the loading side only copies cell contents.
fn stable_cells<'py>(pickler: &PicklerState, cells: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyAny>> {
    let mut stable = Vec::with_capacity(cells.len());
    for cell in cells.iter() {
        match cell_contents(&cell)? {
            Some(value) => {
                let written = pickler.stable(&value)?;
                stable.push(if written.is(&value) { cell } else { new_cell(&written)? });
            }
            None => stable.push(cell),
        }
    }
    Ok(PyTuple::new(cells.py(), stable)?.into_any())
}

/// A dict with its sets of strings written sorted; anything else as is.
fn stable_dict<'py>(pickler: &PicklerState, dict: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let Ok(items) = dict.cast::<PyDict>() else {
        return Ok(dict);
    };
    let copy = PyDict::new(dict.py());
    for (key, value) in items.iter() {
        copy.set_item(key, pickler.stable(&value)?)?;
    }
    Ok(copy.into_any())
}

/// A copy of a str that is not the interned one, so that memoization, and
/// with it the pickle bytes, do not depend on what the process interned.
pub(crate) fn fresh_str<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match value.cast::<PyString>() {
        Ok(text) => Ok(PyString::new(value.py(), text.to_str()?).into_any()),
        Err(_) => Ok(value.clone()),
    }
}
