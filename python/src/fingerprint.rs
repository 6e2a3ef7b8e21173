//! A digest of what defines a dynamic class or typing variable, from which
//! its tracking id is derived: the same source gives the same id in every
//! process, so pickles of it are byte-identical across runs.
//!
//! It reads names, bases, attribute names and the code of methods, never
//! addresses or hash-ordered iteration. Values it cannot read cheaply and
//! stably count by their type only; the tracker tells apart live classes
//! that still share a digest.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyFrozenSet, PySet, PyString, PyTuple, PyType};

use crate::objects;

/// How deep nested code constants and tuples are followed.
const MAX_DEPTH: usize = 8;

/// Hex digest (32 characters) of `obj`'s definition, salted with `salt`.
pub(crate) fn digest(obj: &Bound<'_, PyAny>, salt: usize) -> PyResult<String> {
    let py = obj.py();
    let mut text = String::new();
    describe_definition(obj, &mut text)?;
    text.push_str(&format!("|salt={salt}"));
    let options = PyDict::new(py);
    options.set_item(intern!(py, "digest_size"), 16)?;
    let hasher = objects::blake2b(py)?.call((PyBytes::new(py, text.as_bytes()),), Some(&options))?;
    hasher.call_method0(intern!(py, "hexdigest"))?.extract()
}

fn describe_definition(obj: &Bound<'_, PyAny>, out: &mut String) -> PyResult<()> {
    let py = obj.py();
    push_attr(obj, "__module__", out)?;
    push_attr(obj, "__qualname__", out)?;
    push_attr(obj, "__name__", out)?;
    out.push_str(&obj.get_type().fully_qualified_name()?.to_string());
    if let Ok(class) = obj.cast::<PyType>() {
        for base in class.getattr(intern!(py, "__bases__"))?.cast_into::<PyTuple>()?.iter() {
            out.push_str("|base:");
            push_attr(&base, "__module__", out)?;
            push_attr(&base, "__qualname__", out)?;
        }
        let namespace = crate::objects::dict_copy(&class.getattr(intern!(py, "__dict__"))?)?;
        let keys = namespace.keys();
        keys.sort()?;
        for key in keys.iter() {
            out.push_str(&format!("|{key}="));
            if let Some(value) = namespace.get_item(&key)? {
                describe_value(&value, out, 0)?;
            }
        }
    } else {
        for name in ["__bound__", "__constraints__", "__supertype__"] {
            if let Some(value) = crate::byvalue::optional_attr(obj, &PyString::new(py, name))? {
                out.push_str(&format!("|{name}="));
                describe_value(&value, out, 0)?;
            }
        }
    }
    Ok(())
}

fn push_attr(obj: &Bound<'_, PyAny>, name: &str, out: &mut String) -> PyResult<()> {
    let value = crate::byvalue::optional_attr(obj, &PyString::new(obj.py(), name))?;
    out.push('|');
    if let Some(text) = value.as_ref().and_then(|v| v.cast::<PyString>().ok()) {
        out.push_str(text.to_str()?);
    }
    Ok(())
}

fn describe_value(value: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    let py = value.py();
    if depth > MAX_DEPTH {
        out.push('…');
        return Ok(());
    }
    if is_plain_scalar(value) {
        out.push_str(&value.repr()?.to_string());
    } else if let Ok(items) = value.cast::<PyTuple>() {
        out.push('(');
        for item in items.iter() {
            describe_value(&item, out, depth + 1)?;
            out.push(',');
        }
        out.push(')');
    } else if value.is_instance_of::<PySet>() || value.is_instance_of::<PyFrozenSet>() {
        let mut reprs = Vec::new();
        for item in value.try_iter()? {
            let item = item?;
            let mut text = String::new();
            describe_value(&item, &mut text, depth + 1)?;
            reprs.push(text);
        }
        reprs.sort();
        out.push_str(&format!("{{{}}}", reprs.join(",")));
    } else if let Some(code) = code_of(value)? {
        describe_code(&code, out, depth)?;
    } else if value.is_instance_of::<PyType>() {
        out.push_str("class:");
        push_attr(value, "__module__", out)?;
        push_attr(value, "__qualname__", out)?;
    } else {
        out.push_str(&value.get_type().fully_qualified_name()?.to_string());
        for wrapped in ["__func__", "fget", "fset", "fdel"] {
            if let Some(inner) = crate::byvalue::optional_attr(value, &PyString::new(py, wrapped))? {
                out.push_str(&format!("<{wrapped}:"));
                describe_value(&inner, out, depth + 1)?;
                out.push('>');
            }
        }
    }
    Ok(())
}

fn is_plain_scalar(value: &Bound<'_, PyAny>) -> bool {
    value.is_none()
        || value.is_exact_instance_of::<PyString>()
        || value.is_exact_instance_of::<PyBytes>()
        || value.is_exact_instance_of::<pyo3::types::PyInt>()
        || value.is_exact_instance_of::<pyo3::types::PyFloat>()
        || value.is_exact_instance_of::<pyo3::types::PyBool>()
}

/// The code of a function, or the value itself when it is a code object.
fn code_of<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    // SAFETY: type checks on a live object.
    let (is_code, is_function) = unsafe {
        (
            pyo3::ffi::PyCode_Check(value.as_ptr()) != 0,
            pyo3::ffi::PyFunction_Check(value.as_ptr()) != 0,
        )
    };
    if is_code {
        Ok(Some(value.clone()))
    } else if is_function {
        Ok(Some(value.getattr(intern!(value.py(), "__code__"))?))
    } else {
        Ok(None)
    }
}

fn describe_code(code: &Bound<'_, PyAny>, out: &mut String, depth: usize) -> PyResult<()> {
    let py = code.py();
    out.push_str("code:");
    for name in ["co_qualname", "co_name", "co_names", "co_varnames", "co_firstlineno"] {
        if let Some(value) = crate::byvalue::optional_attr(code, &PyString::new(py, name))? {
            describe_value(&value, out, depth + 1)?;
            out.push(';');
        }
    }
    let bytecode = code.getattr(intern!(py, "co_code"))?;
    out.push_str(&format!("{:?}", bytecode.cast::<PyBytes>()?.as_bytes()));
    describe_value(&code.getattr(intern!(py, "co_consts"))?, out, depth + 1)
}
