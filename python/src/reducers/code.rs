//! Code objects, as `types.CodeType(...)` with the running version's
//! argument layout (see `version.rs`), made independent of the writing
//! process (see `stable.rs`). `types.CodeType` itself travels as
//! a `builtin_type` reconstructor call, through the class reducer.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};

use super::call;
use crate::code_cache::CodeCache;
use crate::version::CODE_COUNTS as COUNTS;
use crate::{name_blob, stable};

#[pyfunction]
pub(crate) fn reduce_code<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(obj.get_type().as_any(), code_fields(obj)?)
}

/// The arguments of `types.CodeType(...)` that rebuild `code`. The fields
/// of a code object never change: read once per code object.
pub(crate) fn code_fields<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    static ARGS: CodeCache = CodeCache::new();
    ARGS.get_or_make(code, || code_args(code))
}

/// `code_fields` behind a mark of the writing Python's version, for the
/// native function shape (`new_function`): bytecode runs only on the
/// version that compiled it, and the loader refuses a code object of
/// another version instead of making one that crashes when called. The
/// mark is the version negated, -(100 × major + minor), -300 or less: a
/// first field that is an argument count is never negative, so pickles
/// written before the mark still load. Behind the mark, the six leading
/// counts travel packed in one bytes object and the four name tuples as
/// one blob where they can (see `name_blob`): a load decodes one object
/// for each instead of an int or a str each. The `cloudpickle` and `pyspark`
/// targets keep `CodeType(...)`'s own arguments.
pub(crate) fn native_code_fields<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    static MARKED: CodeCache = CodeCache::new();
    MARKED.get_or_make(code, || {
        let py = code.py();
        let fields = code_fields(code)?;
        let mark = crate::version::code_mark(py).into_pyobject(py)?.into_any();
        let mut marked = Vec::with_capacity(fields.len() + 1);
        marked.push(mark);
        let packed = packed_counts(&fields);
        let skipped = match packed {
            Some(packed) => {
                marked.push(packed.into_any());
                COUNTS
            }
            None => 0,
        };
        let positions = name_blob::argument_positions(py);
        let blob = match positions.map(|position| fields.get_item(position)) {
            [Ok(names), Ok(varnames), Ok(freevars), Ok(cellvars)] => {
                name_blob::encode([names, varnames, freevars, cellvars])
            }
            _ => None,
        };
        for (index, field) in fields.iter().enumerate().skip(skipped) {
            let field = match &blob {
                Some(blob) if index == positions[0] => blob.clone().into_any(),
                Some(_) if positions.contains(&index) => py.None().into_bound(py),
                _ => field,
            };
            marked.push(field);
        }
        PyTuple::new(py, marked)
    })
}

/// The six counts that lead `CodeType(...)`'s arguments (see
/// `version::CODE_COUNTS`) as one bytes object, an unsigned LEB128
/// number each: the loader reads them without an int object or an opcode
/// each. None if one is not an exact int of 32 bits (the loader then gets
/// the ints themselves).
fn packed_counts<'py>(fields: &Bound<'py, PyTuple>) -> Option<Bound<'py, PyBytes>> {
    let mut packed = Vec::with_capacity(COUNTS);
    for field in fields.iter_borrowed().take(COUNTS) {
        if !field.is_exact_instance_of::<PyInt>() {
            return None;
        }
        crate::leb128::push(&mut packed, field.extract::<u32>().ok()?);
    }
    (fields.len() >= COUNTS).then(|| PyBytes::new(fields.py(), &packed))
}

fn code_args<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let py = obj.py();
    let fields = crate::version::code_args(py);
    PyTuple::new(
        py,
        fields
            .iter()
            .zip(interned_names(py))
            .map(|(field, name)| match *field {
                "co_filename" => stable::code_filename(obj),
                "co_consts" => stable::tuple_items(&obj.getattr(name.bind(py))?),
                _ => obj.getattr(name.bind(py)),
            })
            .collect::<PyResult<Vec<_>>>()?,
    )
}

/// `code_args` as interned Python strings, made once: a `getattr` by Rust
/// `&str` builds and hashes a new Python string each time, and a function's
/// dump reads some sixteen of them per code object.
fn interned_names(py: Python<'_>) -> &[Py<PyString>] {
    static NAMES: PyOnceLock<Vec<Py<PyString>>> = PyOnceLock::new();
    NAMES.get_or_init(py, || {
        crate::version::code_args(py)
            .iter()
            .map(|field| PyString::intern(py, field).unbind())
            .collect()
    })
}
