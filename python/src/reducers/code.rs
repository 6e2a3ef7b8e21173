//! Code objects, as `types.CodeType(...)` with the running version's
//! argument layout (see `version.rs`), made independent of the writing
//! process (see `stable.rs`). `types.CodeType` itself travels as
//! a `builtin_type` reconstructor call, through the class reducer.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::call;
use crate::stable;

#[pyfunction]
pub(crate) fn reduce_code<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let fields = crate::version::code_args(py);
    let args = PyTuple::new(
        py,
        fields
            .iter()
            .map(|field| match *field {
                "co_filename" => stable::code_filename(obj),
                "co_consts" => stable::tuple_items(&obj.getattr(*field)?),
                _ => obj.getattr(*field),
            })
            .collect::<PyResult<Vec<_>>>()?,
    )?;
    call(obj.get_type().as_any(), args)
}
