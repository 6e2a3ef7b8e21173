//! Code objects, as `types.CodeType(...)` with the running version's
//! argument layout (see `version.rs`), made independent of the writing
//! process (see `stable.rs`). `types.CodeType` itself travels as
//! a `builtin_type` reconstructor call, through the class reducer.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};

use super::call;
use crate::code_body::{self, CodeBody};
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
/// written before the mark still load. Behind the mark, the code's counts,
/// line number and byte strings travel as one body (see `code_body`) and
/// the four name tuples as one blob (see `name_blob`): a load decodes one
/// object for each instead of an int, a bytes object or a str each. Fields
/// that cannot all travel so (an int subclass, a name no blob holds) keep
/// the marked form of the release before: the counts packed where they
/// can be, and the names as a blob where they can be. The `cloudpickle`
/// and `pyspark` targets keep `CodeType(...)`'s own arguments.
pub(crate) fn native_code_fields<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    static MARKED: CodeCache = CodeCache::new();
    MARKED.get_or_make(code, || {
        let py = code.py();
        let fields = code_fields(code)?;
        let mark = crate::version::code_mark(py).into_pyobject(py)?.into_any();
        if let Some(bundled) = bundled_fields(&fields, &mark)? {
            return Ok(bundled);
        }
        let mut marked = Vec::with_capacity(fields.len() + 1);
        marked.push(mark);
        let packed = counts_of(&fields).map(|counts| PyBytes::new(py, &packed(&counts)));
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

/// The fields bundled behind `mark` (see `code_body`), when every field
/// the body and the name blob take can travel there: the fields of any
/// code object the compiler made, on 3.11 and later.
fn bundled_fields<'py>(
    fields: &Bound<'py, PyTuple>,
    mark: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyTuple>>> {
    let py = fields.py();
    let argument = |name: &str| {
        let position = crate::version::code_args(py).iter().position(|field| *field == name)?;
        fields.get_item(position).ok()
    };
    let bytes = |name: &str| argument(name).filter(|field| field.is_exact_instance_of::<PyBytes>());
    let (Some(counts), Some(first_line)) = (counts_of(fields), argument("co_firstlineno")) else {
        return Ok(None);
    };
    let Some(first_line) = exact_u32(&first_line) else {
        return Ok(None);
    };
    let (Some(code), Some(line_table), Some(exception_table)) =
        (bytes("co_code"), bytes("co_linetable"), bytes("co_exceptiontable"))
    else {
        return Ok(None);
    };
    let tuples = ["co_names", "co_varnames", "co_freevars", "co_cellvars"].map(argument);
    let [Some(names), Some(varnames), Some(freevars), Some(cellvars)] = tuples else {
        return Ok(None);
    };
    let Some(blob) = name_blob::encode_all([names, varnames, freevars, cellvars]) else {
        return Ok(None);
    };
    let [Some(consts), Some(filename), Some(name), Some(qualname)] =
        ["co_consts", "co_filename", "co_name", "co_qualname"].map(argument)
    else {
        return Ok(None);
    };
    // Exact strs with UTF-8 (no lone surrogate), read where they are.
    let (Ok(name), Ok(qualname)) = (name.cast_exact::<PyString>(), qualname.cast_exact::<PyString>()) else {
        return Ok(None);
    };
    let (Some(name), Some(qualname)) = (crate::cpython::str_bytes(name), crate::cpython::str_bytes(qualname)) else {
        return Ok(None);
    };
    let body = CodeBody {
        counts,
        first_line,
        code: code.cast::<PyBytes>()?.as_bytes(),
        line_table: line_table.cast::<PyBytes>()?.as_bytes(),
        name,
        qualname,
        exception_table: exception_table.cast::<PyBytes>()?.as_bytes(),
    };
    let body = PyBytes::new(py, &body.encode()).into_any();
    let bundled = [mark.clone(), body, consts, blob.into_any(), filename];
    Ok(Some(PyTuple::new(py, bundled)?))
}

/// The six counts that lead `CodeType(...)`'s arguments (see
/// `version::CODE_COUNTS`); None if one is not an exact int of 32 bits.
fn counts_of(fields: &Bound<'_, PyTuple>) -> Option<[u32; COUNTS]> {
    let mut counts = [0; COUNTS];
    for (count, field) in counts.iter_mut().zip(fields.iter_borrowed()) {
        *count = exact_u32(&field)?;
    }
    (fields.len() >= COUNTS).then_some(counts)
}

/// The counts packed in one bytes object, an unsigned LEB128 number each:
/// the loader reads them without an int object or an opcode each.
pub(crate) fn packed(counts: &[u32; COUNTS]) -> Vec<u8> {
    let mut packed = Vec::with_capacity(COUNTS);
    for &count in counts {
        crate::leb128::push(&mut packed, count);
    }
    packed
}

fn exact_u32(field: &Bound<'_, PyAny>) -> Option<u32> {
    if !field.is_exact_instance_of::<PyInt>() {
        return None;
    }
    field.extract::<u32>().ok()
}

/// A code's name blob among its native fields, bundled or marked.
pub(crate) fn names_blob_field<'py>(fields: &Bound<'py, PyTuple>) -> Option<Bound<'py, PyAny>> {
    let position = if code_body::is_bundled(fields) {
        code_body::NAMES
    } else {
        let layout = crate::version::FieldLayout::of(fields, 1);
        layout.index(name_blob::argument_positions(fields.py())[0])
    };
    fields
        .get_item(position)
        .ok()
        .filter(|field| field.is_exact_instance_of::<PyBytes>())
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
