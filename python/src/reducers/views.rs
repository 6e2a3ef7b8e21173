//! Containers and views that `pickle` refuses: cells, mapping proxies,
//! memoryviews, weak sets, and dict keys/values/items views (which ship
//! only what they show, not the whole dict).

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::call;
use crate::objects;
use crate::reconstruct::cell_contents;
use crate::target;

#[pyfunction]
pub(crate) fn reduce_cell<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    match cell_contents(obj)? {
        Some(value) => call(target::active(py)?.make_cell.bind(py), (value,)),
        None => call(target::active(py)?.make_empty_cell.bind(py), ()),
    }
}

#[pyfunction]
pub(crate) fn reduce_mappingproxy<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    call(objects::mappingproxy_type(py)?, (objects::dict_copy(obj)?,))
}

/// A memoryview comes back as bytes, as in cloudpickle.
#[pyfunction]
pub(crate) fn reduce_memoryview<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let bytes = obj.call_method0(intern!(py, "tobytes"))?;
    call(objects::bytes_type(py)?, (bytes,))
}

#[pyfunction]
pub(crate) fn reduce_weakset<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let items = PyList::new(obj.py(), obj.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
    call(objects::weakset_type(obj.py())?, (items,))
}

fn as_list<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(obj.py(), obj.try_iter()?.collect::<PyResult<Vec<_>>>()?)
}

fn as_dict<'py>(items: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(items.py());
    for pair in items.try_iter()? {
        let (key, value) = pair?.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?;
        dict.set_item(key, value)?;
    }
    Ok(dict)
}

#[pyfunction]
pub(crate) fn reduce_dict_keys<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_keys.bind(obj.py()),
        (as_list(obj)?,),
    )
}

#[pyfunction]
pub(crate) fn reduce_dict_values<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_values.bind(obj.py()),
        (as_list(obj)?,),
    )
}

#[pyfunction]
pub(crate) fn reduce_dict_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_items.bind(obj.py()),
        (as_dict(obj)?,),
    )
}

#[pyfunction]
pub(crate) fn reduce_odict_keys<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_keys.bind(obj.py()),
        (as_list(obj)?, true),
    )
}

#[pyfunction]
pub(crate) fn reduce_odict_values<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_values.bind(obj.py()),
        (as_list(obj)?, true),
    )
}

#[pyfunction]
pub(crate) fn reduce_odict_items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(
        target::active(obj.py())?.make_dict_items.bind(obj.py()),
        (as_dict(obj)?, true),
    )
}
