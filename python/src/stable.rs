//! What keeps pickle bytes independent of the process that writes them,
//! beyond sorted class bodies and first-use ordered globals:
//!
//! - sets and frozensets of strings iterate in hash order, which changes
//!   with `PYTHONHASHSEED`: in function and class state they are written
//!   sorted (they load as the same set);
//! - a code object's file name holds the directory the source was run
//!   from: it travels as `<base name>` (see `shipped_filename`).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyFrozenSet, PyList, PySet, PyString, PyTuple};

/// Stands in for a set of strings in a reduce tuple; pickles as
/// `set(sorted_items)` or `frozenset(sorted_items)` (the native writer puts
/// the sorted items in the protocol's set opcodes instead, from protocol 4).
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct SortedStrings {
    kind: Py<PyAny>,
    items: Py<PyList>,
}

impl SortedStrings {
    /// The strings, sorted.
    pub(crate) fn items<'py>(&self, py: Python<'py>) -> &Bound<'py, PyList> {
        self.items.bind(py)
    }

    /// Whether it stands for a frozenset (else a set).
    pub(crate) fn is_frozen(&self, py: Python<'_>) -> bool {
        self.kind.bind(py).is(py.get_type::<PyFrozenSet>())
    }
}

#[pymethods]
impl SortedStrings {
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let args = PyTuple::new(py, [self.items.bind(py)])?;
        PyTuple::new(py, [self.kind.bind(py).clone(), args.into_any()])
    }
}

/// `value`, or a `SortedStrings` for it when it is a set or frozenset whose
/// items are all strings.
pub(crate) fn value<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = value.py();
    let is_set = value.is_exact_instance_of::<PySet>();
    if !is_set && !value.is_exact_instance_of::<PyFrozenSet>() {
        return Ok(value.clone());
    }
    let items = PyList::new(py, value.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
    if !items.iter().all(|item| item.is_exact_instance_of::<PyString>()) {
        return Ok(value.clone());
    }
    items.sort()?;
    let kind = value.get_type().into_any().unbind();
    Ok(Bound::new(
        py,
        SortedStrings {
            kind,
            items: items.unbind(),
        },
    )?
    .into_any())
}

/// A tuple with each item passed through `value` (defaults, code constants).
pub(crate) fn tuple_items<'py>(tuple: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let Ok(items) = tuple.cast::<PyTuple>() else {
        return Ok(tuple.clone());
    };
    if !items
        .iter()
        .any(|item| item.is_exact_instance_of::<PySet>() || item.is_exact_instance_of::<PyFrozenSet>())
    {
        return Ok(tuple.clone());
    }
    let stable = items.iter().map(|item| value(&item)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyTuple::new(tuple.py(), stable)?.into_any())
}

/// The file name a code object travels with: `<script.py>` for
/// `/home/me/project/script.py`; names like `<stdin>` stay as they are.
/// The base name still tells a traceback where the code came from (a
/// notebook cell's file is named after a hash of its source); the angle
/// brackets keep `linecache` from showing lines of an unrelated local file
/// that happens to share the name.
pub(crate) fn shipped_filename(name: &str) -> String {
    if name.starts_with('<') && name.ends_with('>') {
        return name.to_owned();
    }
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    format!("<{base}>")
}

/// `shipped_filename` of a code object's `co_filename`, as a new str.
pub(crate) fn code_filename<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = code.py();
    let name = code.getattr(intern!(py, "co_filename"))?;
    let name = name.cast::<PyString>()?.to_str()?;
    Ok(PyString::new(py, &shipped_filename(name)).into_any())
}

#[cfg(test)]
mod tests {
    use super::shipped_filename;

    #[test]
    fn keeps_the_base_name_only() {
        assert_eq!(shipped_filename("/tmp/a/script.py"), "<script.py>");
        assert_eq!(shipped_filename("C:\\work\\nb.py"), "<nb.py>");
        assert_eq!(shipped_filename("<stdin>"), "<stdin>");
        assert_eq!(shipped_filename("rel.py"), "<rel.py>");
    }
}
