//! Objects that are rebuilt from a name: loggers, the typing variables
//! (`TypeVar`, `ParamSpec`, `TypeVarTuple`, `NewType`: by reference when
//! importable, else by value and tracked like classes, so every load in a
//! process yields the same object), and the field markers of `dataclasses`
//! (whose identity the dataclass machinery checks).
//!
//! cloudpickle 3.1 handles only TypeVar; the other three go beyond it.

use pyo3::intern;
use pyo3::prelude::*;

use super::call;
use crate::reconstruct::reconstructor;
use crate::{byvalue, objects, registry, tracker};

/// Loading gives back the loading process's logger of that name.
#[pyfunction]
pub(crate) fn reduce_logger<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let name = obj.getattr(intern!(obj.py(), "name"))?;
    call(objects::get_logger(obj.py())?, (name,))
}

#[pyfunction]
pub(crate) fn reduce_root_logger<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(objects::get_logger(obj.py())?, ())
}

/// `getattr(module, name)` when `name` imports back to `obj` from a module
/// not registered for by-value.
fn by_reference<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    match byvalue::importable_module(obj, Some(name))? {
        Some(module) if !registry::is_registered(&module)? => Ok(Some(call(objects::getattr_fn(py)?, (module, name))?)),
        _ => Ok(None),
    }
}

#[pyfunction]
pub(crate) fn reduce_typevar<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    let parts = (
        name,
        obj.getattr(intern!(py, "__bound__"))?,
        obj.getattr(intern!(py, "__constraints__"))?,
        obj.getattr(intern!(py, "__covariant__"))?,
        obj.getattr(intern!(py, "__contravariant__"))?,
        tracker::id_of(obj)?,
    );
    call(reconstructor!(py, "make_typevar")?, parts)
}

#[pyfunction]
pub(crate) fn reduce_paramspec<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    let parts = (
        name,
        obj.getattr(intern!(py, "__bound__"))?,
        obj.getattr(intern!(py, "__covariant__"))?,
        obj.getattr(intern!(py, "__contravariant__"))?,
        tracker::id_of(obj)?,
    );
    call(reconstructor!(py, "make_paramspec")?, parts)
}

#[pyfunction]
pub(crate) fn reduce_typevartuple<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    call(reconstructor!(py, "make_typevartuple")?, (name, tracker::id_of(obj)?))
}

#[pyfunction]
pub(crate) fn reduce_newtype<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let qualname = obj.getattr(intern!(py, "__qualname__"))?;
    if let Some(reduced) = by_reference(obj, &qualname)? {
        return Ok(reduced);
    }
    let parts = (
        qualname,
        obj.getattr(intern!(py, "__supertype__"))?,
        obj.getattr(intern!(py, "__module__"))?,
        tracker::id_of(obj)?,
    );
    call(reconstructor!(py, "make_newtype")?, parts)
}

#[pyfunction]
pub(crate) fn reduce_dataclass_field_marker<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let name = obj.getattr(intern!(obj.py(), "name"))?;
    call(reconstructor!(obj.py(), "get_dataclass_field_type_sentinel")?, (name,))
}
