//! Binding of the core's pickle inspector: what a pickle would import and call.

use flightpickle_core::pickle::{self, ByValueKind};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Reads a pickle without running it. Returns a dict of plain data:
/// `protocol`, `globals` and `calls` (lists of `(qualified name, count)`),
/// `modules` (sorted names), `by_value` (`(kind, name, bytes)` triples),
/// `out_of_band_buffers` and `length`.
#[pyfunction]
pub(crate) fn inspect_pickle<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    let found = py
        .detach(|| pickle::inspect(data))
        .map_err(|e| PyValueError::new_err(format!("not a readable pickle: {e}")))?;
    let counted = |entries: &std::collections::BTreeMap<pickle::GlobalName, usize>| -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, entries.iter().map(|(global, count)| (global.qualified(), *count)))
    };
    let by_value = found.by_value.iter().map(|item| {
        let kind = match item.kind {
            ByValueKind::Function => "function",
            ByValueKind::Class => "class",
            ByValueKind::Enum => "enum",
            ByValueKind::Module => "module",
        };
        (kind, item.name.clone(), item.bytes)
    });
    let dict = PyDict::new(py);
    dict.set_item("protocol", found.protocol)?;
    dict.set_item("globals", counted(&found.globals)?)?;
    dict.set_item("calls", counted(&found.calls)?)?;
    dict.set_item("modules", PyList::new(py, &found.modules)?)?;
    dict.set_item("by_value", PyList::new(py, by_value)?)?;
    dict.set_item("out_of_band_buffers", found.out_of_band_buffers)?;
    dict.set_item("length", found.length)?;
    Ok(dict)
}
