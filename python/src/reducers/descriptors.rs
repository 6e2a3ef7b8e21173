//! Things found in class bodies: class and static methods, properties,
//! getset descriptors, bound methods.

use pyo3::intern;
use pyo3::prelude::*;

use super::call;
use crate::objects;

/// classmethod, staticmethod and their abc variants: the wrapper type
/// around the function.
#[pyfunction]
pub(crate) fn reduce_classmethod<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let func = obj.getattr(intern!(obj.py(), "__func__"))?;
    call(obj.get_type().as_any(), (func,))
}

/// An abstractproperty comes back as a plain property, as in cloudpickle.
#[pyfunction]
pub(crate) fn reduce_property<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let parts = (
        obj.getattr(intern!(py, "fget"))?,
        obj.getattr(intern!(py, "fset"))?,
        obj.getattr(intern!(py, "fdel"))?,
        obj.getattr(intern!(py, "__doc__"))?,
    );
    call(objects::property_type(py)?, parts)
}

#[pyfunction]
pub(crate) fn reduce_getset<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let owner = obj.getattr(intern!(py, "__objclass__"))?;
    let name = obj.getattr(intern!(py, "__name__"))?;
    call(objects::getattr_fn(py)?, (owner, name))
}

#[pyfunction]
pub(crate) fn reduce_method<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let func = obj.getattr(intern!(py, "__func__"))?;
    let bound_to = obj.getattr(intern!(py, "__self__"))?;
    call(objects::method_type(py)?, (func, bound_to))
}
