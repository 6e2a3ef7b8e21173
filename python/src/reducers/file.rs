//! Open text files travel by content: the loading side gets an
//! `io.StringIO` with the same text, position and name. The standard
//! streams travel by name; what cannot be read is refused. The messages
//! are cloudpickle's.

use pyo3::exceptions::PyOSError;
use pyo3::intern;
use pyo3::prelude::*;

use super::call;
use crate::byvalue::optional_attr;
use crate::objects;
use crate::target;

#[pyfunction]
pub(crate) fn reduce_text_file<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let (Some(name), Some(mode)) = (
        optional_attr(obj, intern!(py, "name"))?,
        optional_attr(obj, intern!(py, "mode"))?,
    ) else {
        return Err(refused(
            py,
            "Cannot pickle files that do not map to an actual file".into(),
        ));
    };
    let sys = py.import("sys")?;
    for stream in ["stdout", "stderr"] {
        if sys.getattr(stream)?.is(obj) {
            return call(objects::getattr_fn(py)?, (sys, stream));
        }
    }
    if sys.getattr("stdin")?.is(obj) {
        return Err(refused(py, "Cannot pickle standard input".into()));
    }
    if obj.getattr(intern!(py, "closed"))?.is_truthy()? {
        return Err(refused(py, "Cannot pickle closed files".into()));
    }
    if optional_attr(obj, intern!(py, "isatty"))?.is_some() && obj.call_method0(intern!(py, "isatty"))?.is_truthy()? {
        return Err(refused(py, "Cannot pickle files that map to tty objects".into()));
    }
    let mode_text = mode.str()?.to_string();
    if !mode_text.contains('r') && !mode_text.contains('+') {
        return Err(refused(
            py,
            format!("Cannot pickle files that are not opened for reading: {mode_text}"),
        ));
    }
    let copy = read_into_stringio(obj).map_err(|err| {
        if err.is_instance_of::<PyOSError>(py) {
            let wrapped = refused(
                py,
                format!("Cannot pickle file {} as it cannot be read", name_text(&name)),
            );
            wrapped.set_cause(py, Some(err));
            wrapped
        } else {
            err
        }
    })?;
    copy.setattr(intern!(py, "name"), name)?;
    call(target::active(py)?.file_reconstructor.bind(py), (copy,))
}

/// The whole text, read without moving the file's position.
fn read_into_stringio<'py>(file: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = file.py();
    let position = file.call_method0(intern!(py, "tell"))?;
    file.call_method1(intern!(py, "seek"), (0,))?;
    let contents = file.call_method0(intern!(py, "read"))?;
    file.call_method1(intern!(py, "seek"), (&position,))?;
    let copy = py.import("io")?.getattr("StringIO")?.call0()?;
    copy.call_method1(intern!(py, "write"), (contents,))?;
    copy.call_method1(intern!(py, "seek"), (position,))?;
    Ok(copy)
}

fn name_text(name: &Bound<'_, PyAny>) -> String {
    name.str().map(|s| s.to_string()).unwrap_or_else(|_| "<unnamed>".into())
}

fn refused(py: Python<'_>, message: String) -> PyErr {
    objects::new_pickling_error(py, message)
}
