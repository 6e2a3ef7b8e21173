//! A function's code object from the arguments of `types.CodeType(...)`
//! that `new_function` receives.
//!
//! On 3.11 the fields go straight to `PyCode_NewWithPosOnlyArgs`, the C
//! constructor `CodeType(...)` itself ends in: a load then skips the
//! type's call, its argument parsing and the copies it makes of the four
//! name tuples. Fields of the exact types the compiler makes go that way,
//! with the `code.__new__` audit event raised as the type raises it; any
//! other field (an int subclass, a name that is a str subclass, a negative
//! count) goes to the type, which converts it or refuses it with its own
//! error. The constructor's signature
//! differs between 3.10, 3.11 and 3.12 (PyO3 declares 3.10's), so other
//! versions, and field tuples of another length, keep the `CodeType(...)`
//! call and its errors.
//!
//! The fields start with the mark of the Python that wrote them (pickles
//! of earlier releases have none): code of another version is refused
//! with an `UnpicklingError`, since its bytecode would crash this one.
//! Behind a mark, the fields come bundled (see `code_body`), or, as the
//! release before wrote them, with the six leading counts packed in one
//! bytes object and the four name tuples as one blob (see `name_blob`).

use std::ffi::{c_char, c_int};
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyInt, PyTuple, PyType};

use super::loaded_code;
use crate::version::{CODE_COUNTS as COUNTS, FieldLayout};
use crate::{code_body, leb128, name_blob, objects, version};

/// A code object made from its fields.
pub(super) struct MadeCode<'py> {
    pub(super) code: Bound<'py, PyAny>,
    /// Its number of free variables.
    pub(super) free_vars: usize,
    /// The `co_names` it was made from, which a function's state may name
    /// its globals by index into (see `writer/dumper/functions.rs`); None
    /// when that field was not a tuple (the constructor refused it or
    /// converted it).
    pub(super) names: Option<Bound<'py, PyTuple>>,
}

impl<'py> From<loaded_code::Found<'py>> for MadeCode<'py> {
    fn from(found: loaded_code::Found<'py>) -> Self {
        MadeCode {
            code: found.code,
            free_vars: found.free_vars,
            names: found.names,
        }
    }
}

/// The code object the fields make, or the one an earlier load made from
/// equal fields (see `loaded_code`).
pub(super) fn make_code<'py>(fields: &Bound<'py, PyTuple>) -> PyResult<MadeCode<'py>> {
    let start = arguments_start(fields)?;
    if start == 1 && code_body::is_bundled(fields) {
        return make_bundled_code(fields);
    }
    // Packed counts and name blobs come only behind a mark (this release's
    // writer).
    let layout = FieldLayout::of(fields, start);
    let counts = packed_counts(fields, layout)?;
    let fingerprint = loaded_code::fingerprint(fields);
    if let Some(found) = loaded_code::find(fields, fingerprint) {
        audit_reuse(fields, layout, counts)?;
        return Ok(found.into());
    }
    let made = make_new_code(fields, start, layout, counts)?;
    // These fields hold the code string and the name the audit names.
    loaded_code::keep(fields, fingerprint, &made, || Ok(None));
    Ok(made)
}

/// `make_code` for bundled fields (see `code_body`): an earlier load's
/// code object if its fields were the same, else one made from the marked
/// fields the body stands for.
fn make_bundled_code<'py>(fields: &Bound<'py, PyTuple>) -> PyResult<MadeCode<'py>> {
    let body = item(fields, code_body::BODY).ok_or_else(|| malformed_bundle("it has no body"))?;
    // SAFETY: `is_bundled` checked that the body is an exact bytes.
    let body = unsafe { body.cast_unchecked::<PyBytes>() };
    let fingerprint = loaded_code::fingerprint(fields);
    if let Some(mut found) = loaded_code::find(fields, fingerprint) {
        // Equal fields: the body decoded when the entry was made, and its
        // audit arguments were kept with it.
        let reused = match found.audit.take() {
            Some(reused) => reused,
            None => reuse_audit(&found.code, code_body::decode(body.as_bytes())?.counts)?,
        };
        audit_bundled_reuse(fields, &reused)?;
        return Ok(found.into());
    }
    let body = code_body::decode(body.as_bytes())?;
    #[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
    let made = make_bundled_directly(fields, &body)?;
    #[cfg(not(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy))))]
    let made = None;
    let made = match made {
        Some(made) => made,
        None => {
            let marked = unbundle(fields, &body)?;
            let layout = FieldLayout::of(&marked, 1);
            make_new_code(&marked, 1, layout, Some(body.counts))?
        }
    };
    loaded_code::keep(fields, fingerprint, &made, || {
        reuse_audit(&made.code, body.counts).map(Some)
    });
    Ok(made)
}

/// The code object of bundled fields made by the C constructor from the
/// body's parts, without the marked fields `unbundle` would make first
/// (~1k of a first load); None when a field is not of the type the
/// constructor takes (the marked fields then go to `CodeType(...)`).
#[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
fn make_bundled_directly<'py>(
    fields: &Bound<'py, PyTuple>,
    body: &code_body::CodeBody<'_>,
) -> PyResult<Option<MadeCode<'py>>> {
    let py = fields.py();
    let field = |index: usize| item(fields, index).ok_or_else(|| malformed_bundle("a field is missing"));
    let (mark, consts, filename) = (field(0)?, field(code_body::CONSTS)?, field(code_body::FILENAME)?);
    let [names, varnames, freevars, cellvars] = name_blob::decode(&bundled_names(fields)?)?;
    let code = PyBytes::new(py, body.code);
    let line_table = PyBytes::new(py, body.line_table);
    let exception_table = PyBytes::new(py, body.exception_table);
    let name = name_blob::interned(py, body.name)?;
    let qualname = name_blob::interned(py, body.qualname)?;
    let first_line = body.first_line.into_pyobject(py)?;
    // `CodeType(...)`'s order on 3.11 (see `direct`); the counts come
    // packed, so their places hold stand-ins.
    let arguments = [
        mark,
        mark,
        mark,
        mark,
        mark,
        mark,
        code.as_any().as_borrowed(),
        consts,
        names.as_any().as_borrowed(),
        varnames.as_any().as_borrowed(),
        filename,
        name.as_any().as_borrowed(),
        qualname.as_any().as_borrowed(),
        first_line.as_any().as_borrowed(),
        line_table.as_any().as_borrowed(),
        exception_table.as_any().as_borrowed(),
        freevars.as_any().as_borrowed(),
        cellvars.as_any().as_borrowed(),
    ];
    let made = direct::make_code(py, Some(body.counts), &arguments)?;
    Ok(made.map(|(code, free_vars)| MadeCode {
        code,
        free_vars,
        names: Some(names.clone()),
    }))
}

/// The marked fields, with packed counts and a name blob, that bundled
/// `fields` stand for, in this Python's `CodeType(...)` order.
fn unbundle<'py>(fields: &Bound<'py, PyTuple>, body: &code_body::CodeBody<'_>) -> PyResult<Bound<'py, PyTuple>> {
    let py = fields.py();
    let field = |index: usize| {
        item(fields, index)
            .map(|field| field.to_owned())
            .ok_or_else(|| malformed_bundle("a field is missing"))
    };
    let names = bundled_names(fields)?.into_any();
    let arguments = version::code_args(py);
    let mut marked = Vec::with_capacity(arguments.len() + 2 - COUNTS);
    marked.push(field(0)?);
    marked.push(PyBytes::new(py, &crate::reducers::code::packed(&body.counts)).into_any());
    for argument in &arguments[COUNTS..] {
        let value = match *argument {
            "co_code" => PyBytes::new(py, body.code).into_any(),
            "co_consts" => field(code_body::CONSTS)?,
            "co_names" => names.clone(),
            "co_varnames" | "co_freevars" | "co_cellvars" => py.None().into_bound(py),
            "co_filename" => field(code_body::FILENAME)?,
            "co_name" => name_blob::interned(py, body.name)?.into_any(),
            "co_qualname" => name_blob::interned(py, body.qualname)?.into_any(),
            "co_firstlineno" => body.first_line.into_pyobject(py)?.into_any(),
            "co_linetable" => PyBytes::new(py, body.line_table).into_any(),
            "co_exceptiontable" => PyBytes::new(py, body.exception_table).into_any(),
            other => {
                return Err(malformed_bundle(&format!(
                    "this Python's code objects have a field ({other}) that bundled fields lack"
                )));
            }
        };
        marked.push(value);
    }
    PyTuple::new(py, marked)
}

/// Bundled fields' name blob, which must be a bytes object.
fn bundled_names<'py>(fields: &Bound<'py, PyTuple>) -> PyResult<Bound<'py, PyBytes>> {
    let names = item(fields, code_body::NAMES).ok_or_else(|| malformed_bundle("a field is missing"))?;
    match names.cast_exact::<PyBytes>() {
        Ok(blob) => Ok(blob.to_owned()),
        Err(_) => Err(malformed_bundle("its names are not a blob")),
    }
}

#[cold]
fn malformed_bundle(what: &str) -> PyErr {
    PyValueError::new_err(format!("a code object's bundled fields are malformed: {what}"))
}

/// A new code object from the fields.
fn make_new_code<'py>(
    fields: &Bound<'py, PyTuple>,
    start: usize,
    layout: FieldLayout,
    counts: Option<[u32; COUNTS]>,
) -> PyResult<MadeCode<'py>> {
    let py = fields.py();
    let blobs = match start {
        0 => NameTuples::default(),
        _ => decode_name_blobs(fields, layout)?,
    };
    let positions = name_blob::argument_positions(py);
    let names = match &blobs[0] {
        Some(names) => Some(names.clone()),
        None => item(fields, layout.index(positions[0]))
            .and_then(|names| names.cast_exact::<PyTuple>().ok().map(|names| names.to_owned())),
    };
    #[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
    if fields.len() == layout.index(direct::FIELDS) {
        // SAFETY: every index is below the length just checked (the
        // counts' stand-ins read the mark, which the packed form has).
        let argument = |position: usize| unsafe { fields.get_borrowed_item_unchecked(layout.index(position)) };
        let mut arguments: [Borrowed<'_, 'py, PyAny>; direct::FIELDS] = std::array::from_fn(argument);
        for (&position, tuple) in positions.iter().zip(&blobs) {
            if let Some(tuple) = tuple {
                arguments[position] = tuple.as_any().as_borrowed();
            }
        }
        if let Some((code, free_vars)) = direct::make_code(py, counts, &arguments)? {
            return Ok(MadeCode { code, free_vars, names });
        }
    }
    let mut arguments = Vec::with_capacity(fields.len() + COUNTS);
    if let Some(counts) = counts {
        for count in counts {
            arguments.push(count.into_pyobject(py)?.into_any());
        }
    }
    arguments.extend(fields.iter().skip(layout.index(arguments.len())));
    for (&position, tuple) in positions.iter().zip(blobs) {
        if let (Some(tuple), Some(slot)) = (tuple, arguments.get_mut(position)) {
            *slot = tuple.into_any();
        }
    }
    let arguments = PyTuple::new(py, arguments)?;
    check_instructions(&arguments)?;
    let code = objects::code_type(py)?.call1(&arguments)?;
    let free_vars = free_var_count(&arguments)?;
    Ok(MadeCode { code, free_vars, names })
}

/// The counts, when the field after the mark packs them (see
/// `reducers::code::native_code_fields`): one unsigned LEB128 number each.
fn packed_counts(fields: &Bound<'_, PyTuple>, layout: FieldLayout) -> PyResult<Option<[u32; COUNTS]>> {
    if !layout.packed {
        return Ok(None);
    }
    let Some(Ok(packed)) = item(fields, layout.start).map(|field| field.cast_exact::<PyBytes>()) else {
        return Ok(None);
    };
    let malformed = || PyValueError::new_err("a code object's packed counts are malformed");
    let mut rest = packed.as_bytes();
    let mut counts = [0u32; COUNTS];
    for count in &mut counts {
        *count = leb128::read(&mut rest).ok_or_else(malformed)?;
    }
    if !rest.is_empty() {
        return Err(malformed());
    }
    Ok(Some(counts))
}

/// `check_bytecode` for the `co_code` of `CodeType(...)`'s arguments.
fn check_instructions(arguments: &Bound<'_, PyTuple>) -> PyResult<()> {
    let py = arguments.py();
    static CODE_POSITION: OnceLock<Option<usize>> = OnceLock::new();
    let position = CODE_POSITION.get_or_init(|| version::code_args(py).iter().position(|name| *name == "co_code"));
    // Anything but bytes is the type's to refuse.
    let Some(code) = position.and_then(|position| item(arguments, position)) else {
        return Ok(());
    };
    match code.cast::<PyBytes>() {
        Ok(code) => check_bytecode(py, code.as_bytes()),
        Err(_) => Ok(()),
    }
}

/// Refuses bytecode that a code object would later misread, which compiled
/// code never holds (a corrupted pickle may):
/// - a last instruction whose inline caches run past the end. 3.12 and
///   later write each instruction's first cache entry as they make the
///   code object, and 3.11 writes all of them into the copy that
///   `co_code` (and a reuse's audit event) makes: either writes past the
///   end of the memory it has, and corrupts the heap;
/// - an instrumented opcode (3.12 and later), which has the constructor
///   read instrumentation the new object does not have.
fn check_bytecode(py: Python<'_>, bytecode: &[u8]) -> PyResult<()> {
    let Some(caches) = version::inline_caches(py)? else {
        return Ok(());
    };
    let mut at = 0;
    while let Some(&opcode) = bytecode.get(at) {
        let follow = caches[usize::from(opcode)];
        if follow == u8::MAX {
            return Err(PyValueError::new_err(format!(
                "a code object's bytecode is malformed: opcode {opcode} at {at} is not one compiled code holds"
            )));
        }
        at += 2 * (1 + usize::from(follow));
    }
    if at > bytecode.len() {
        return Err(PyValueError::new_err(
            "a code object's bytecode is malformed: its last instruction's caches run past its end",
        ));
    }
    Ok(())
}

/// The name tuples decoded from blobs, in the order of
/// `name_blob::argument_positions`.
type NameTuples<'py> = [Option<Bound<'py, PyTuple>>; 4];

/// The name tuples, when `co_names`' field is their blob (see `name_blob`);
/// the other three fields must then be None.
fn decode_name_blobs<'py>(fields: &Bound<'py, PyTuple>, layout: FieldLayout) -> PyResult<NameTuples<'py>> {
    let positions = name_blob::argument_positions(fields.py());
    let Some(blob) = item(fields, layout.index(positions[0])) else {
        return Ok(NameTuples::default());
    };
    let Ok(blob) = blob.cast_exact::<PyBytes>() else {
        return Ok(NameTuples::default());
    };
    if !positions[1..]
        .iter()
        .all(|&position| item(fields, layout.index(position)).is_some_and(|field| field.is_none()))
    {
        return Err(PyValueError::new_err(
            "a code object's names are malformed: with their blob, its other name fields must be None",
        ));
    }
    Ok(name_blob::decode(&blob)?.map(Some))
}

/// The item at `index`, if the tuple is that long (read inline: a load
/// reads several, and PyO3's checked read is a call each).
fn item<'a, 'py>(fields: &'a Bound<'py, PyTuple>, index: usize) -> Option<Borrowed<'a, 'py, PyAny>> {
    // SAFETY: the index is below the length.
    (index < fields.len()).then(|| unsafe { fields.get_borrowed_item_unchecked(index) })
}

/// Where `CodeType(...)`'s arguments start in `fields`: after the mark of
/// the Python that wrote them (see `reducers::code::native_code_fields`),
/// which must be this one, or at once in pickles written before the mark.
fn arguments_start(fields: &Bound<'_, PyTuple>) -> PyResult<usize> {
    let Ok(first) = fields.get_borrowed_item(0) else {
        return Ok(0);
    };
    if !first.is_exact_instance_of::<PyInt>() {
        return Ok(0);
    }
    match first.extract::<i64>() {
        // A mark names Python 3 or later, so it is -300 or less; a first
        // field above that is an argument count (for CodeType to refuse if
        // negative).
        Ok(mark) if mark <= -300 => {
            if mark == version::code_mark(fields.py()) {
                Ok(1)
            } else {
                Err(other_version(fields, mark))
            }
        }
        _ => Ok(0),
    }
}

/// The error for code written by another Python: its bytecode would crash
/// this one, so no code object is made.
#[cold]
fn other_version(fields: &Bound<'_, PyTuple>, mark: i64) -> PyErr {
    let py = fields.py();
    let writer = version::marked_version(mark);
    let (major, minor) = version::running(py);
    let names = version::code_args(py);
    let layout = FieldLayout::of(fields, 1);
    let function = if code_body::is_bundled(fields) {
        bundled_qualname(fields)
    } else {
        ["co_qualname", "co_name"]
            .iter()
            .find_map(|wanted| names.iter().position(|name| name == wanted))
            .and_then(|position| item(fields, layout.index(position)))
            .and_then(|name| name.extract::<String>().ok())
    };
    let function = function.map(|name| format!(" of {name}")).unwrap_or_default();
    let message = format!(
        "this pickle holds the code{function} of Python {writer}, whose bytecode only Python {writer} \
         runs (this is {major}.{minor}): load it with Python {writer}, or pickle the function \
         again here"
    );
    let error_type = py
        .import("pickle")
        .and_then(|pickle| pickle.getattr("UnpicklingError"))
        .and_then(|error_type| Ok(error_type.cast_into::<PyType>()?));
    match error_type {
        Ok(error_type) => PyErr::from_type(error_type, message),
        Err(error) => error,
    }
}

/// The qualname in bundled fields' body, if it can be read.
fn bundled_qualname(fields: &Bound<'_, PyTuple>) -> Option<String> {
    let body = item(fields, code_body::BODY)?;
    let body = body.cast::<PyBytes>().ok()?;
    let parts = code_body::CodeBody::decode(body.as_bytes()).ok()?;
    String::from_utf8(parts.qualname.to_vec()).ok()
}

/// How many free variables the code made from `fields` has: the length of
/// its `co_freevars` argument, which the constructor has just checked (a
/// tuple of strs), so the code's own (a tuple made afresh on each read)
/// need not be asked.
fn free_var_count(fields: &Bound<'_, PyTuple>) -> PyResult<usize> {
    let index = version::code_args(fields.py())
        .iter()
        .position(|name| *name == "co_freevars")
        .ok_or_else(|| PyValueError::new_err("this Python's CodeType has no co_freevars"))?;
    fields.get_item(index)?.len()
}

unsafe extern "C" {
    // Stable ABI since 3.8; PyO3 does not declare it.
    fn PySys_Audit(event: *const c_char, format: *const c_char, ...) -> c_int;
}

/// `code.__new__` for a code object an earlier load made from equal
/// fields: a hook that refuses code objects must see every load, not only
/// the one that made it. The fields were read once already, so each is
/// there and of the type the audit wants.
fn audit_reuse(fields: &Bound<'_, PyTuple>, layout: FieldLayout, packed: Option<[u32; COUNTS]>) -> PyResult<()> {
    let py = fields.py();
    static POSITIONS: OnceLock<Option<[usize; 3]>> = OnceLock::new();
    let positions = POSITIONS.get_or_init(|| {
        let names = version::code_args(py);
        let at = |wanted: &str| names.iter().position(|name| *name == wanted);
        Some([at("co_code")?, at("co_filename")?, at("co_name")?])
    });
    let missing = || PyValueError::new_err("a code object's fields are malformed");
    let mut objects = [None; 3];
    for (object, position) in objects.iter_mut().zip(positions.ok_or_else(missing)?) {
        *object = item(fields, layout.index(position));
    }
    let [Some(code), Some(filename), Some(name)] = objects else {
        return Err(missing());
    };
    let mut counts = [0; COUNTS];
    for (position, count) in counts.iter_mut().enumerate() {
        let value = match packed {
            Some(packed) => i64::from(packed[position]),
            None => item(fields, layout.index(position))
                .ok_or_else(missing)?
                .extract::<i64>()?,
        };
        *count = c_int::try_from(value).map_err(|_| missing())?;
    }
    audit(py, [code, filename, name], counts)
}

/// `audit_reuse` for bundled fields, whose code string and name are not
/// fields of their own: the code object's own stand in (see `reuse_audit`),
/// equal to those it was made from.
fn audit_bundled_reuse(fields: &Bound<'_, PyTuple>, reused: &loaded_code::ReuseAudit) -> PyResult<()> {
    let py = fields.py();
    let filename = item(fields, code_body::FILENAME).ok_or_else(|| malformed_bundle("a field is missing"))?;
    let objects = [
        reused.code_string.bind_borrowed(py),
        filename,
        reused.name.bind_borrowed(py),
    ];
    audit(py, objects, reused.counts)
}

/// The audit arguments of a reuse of `code`, made from a body with `counts`.
fn reuse_audit(code: &Bound<'_, PyAny>, counts: [u32; COUNTS]) -> PyResult<loaded_code::ReuseAudit> {
    let mut audited = [0; COUNTS];
    for (audited, count) in audited.iter_mut().zip(counts) {
        *audited = c_int::try_from(count).map_err(|_| malformed_bundle("a count is out of range"))?;
    }
    Ok(loaded_code::ReuseAudit {
        code_string: crate::cpython::code_string(code)?.unbind(),
        name: code.getattr(pyo3::intern!(code.py(), "co_name"))?.unbind(),
        counts: audited,
    })
}

/// `code.__new__`, with the arguments `types.CodeType(...)` gives it:
/// the code string, the file name and the name, then the counts.
fn audit(py: Python<'_>, objects: [Borrowed<'_, '_, PyAny>; 3], counts: [c_int; 6]) -> PyResult<()> {
    let [code, filename, name] = objects;
    let [argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags] = counts;
    // SAFETY: the format names three objects (borrowed, live for the
    // call) and six C ints, passed in that order.
    let status = unsafe {
        PySys_Audit(
            c"code.__new__".as_ptr(),
            c"OOOiiiiii".as_ptr(),
            code.as_ptr(),
            filename.as_ptr(),
            name.as_ptr(),
            argcount,
            posonlyargcount,
            kwonlyargcount,
            nlocals,
            stacksize,
            flags,
        )
    };
    if status < 0 {
        return Err(PyErr::fetch(py));
    }
    Ok(())
}

#[cfg(all(Py_3_11, not(Py_3_12), not(PyPy), not(GraalPy)))]
mod direct {
    use std::ffi::c_int;

    use pyo3::ffi;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyInt, PyString, PyTuple};

    unsafe extern "C" {
        // 3.11's signature (Include/cpython/code.h); PyO3 declares 3.10's
        // under this name, hence the Rust name of its own.
        #[link_name = "PyCode_NewWithPosOnlyArgs"]
        fn new_code_311(
            argcount: c_int,
            posonlyargcount: c_int,
            kwonlyargcount: c_int,
            nlocals: c_int,
            stacksize: c_int,
            flags: c_int,
            code: *mut ffi::PyObject,
            consts: *mut ffi::PyObject,
            names: *mut ffi::PyObject,
            varnames: *mut ffi::PyObject,
            freevars: *mut ffi::PyObject,
            cellvars: *mut ffi::PyObject,
            filename: *mut ffi::PyObject,
            name: *mut ffi::PyObject,
            qualname: *mut ffi::PyObject,
            firstlineno: c_int,
            linetable: *mut ffi::PyObject,
            exceptiontable: *mut ffi::PyObject,
        ) -> *mut ffi::PyCodeObject;

    }

    /// `types.CodeType(...)`'s positional arguments on 3.11.
    pub(super) const FIELDS: usize = 18;

    // Their positions (`version::code_args`).
    const ARGCOUNT: usize = 0;
    const POSONLYARGCOUNT: usize = 1;
    const KWONLYARGCOUNT: usize = 2;
    const NLOCALS: usize = 3;
    const STACKSIZE: usize = 4;
    const FLAGS: usize = 5;
    const CODE: usize = 6;
    const CONSTS: usize = 7;
    const NAMES: usize = 8;
    const VARNAMES: usize = 9;
    const FILENAME: usize = 10;
    const NAME: usize = 11;
    const QUALNAME: usize = 12;
    const FIRSTLINENO: usize = 13;
    const LINETABLE: usize = 14;
    const EXCEPTIONTABLE: usize = 15;
    const FREEVARS: usize = 16;
    const CELLVARS: usize = 17;

    /// The code object and its number of free variables; None when a
    /// field is not of the exact type the compiler makes (or a count is out
    /// of the type's range), for `CodeType(...)` to convert it or refuse it
    /// with its own error.
    /// `packed`: the counts, when they came packed (their `arguments` are
    /// then stand-ins).
    pub(super) fn make_code<'py>(
        py: Python<'py>,
        packed: Option<[u32; super::COUNTS]>,
        arguments: &[Borrowed<'_, 'py, PyAny>; FIELDS],
    ) -> PyResult<Option<(Bound<'py, PyAny>, usize)>> {
        let field = |index: usize| arguments[index];
        let mut counts = [0; 6];
        for (position, (count, index)) in counts
            .iter_mut()
            .zip([ARGCOUNT, POSONLYARGCOUNT, KWONLYARGCOUNT, NLOCALS, STACKSIZE, FLAGS])
            .enumerate()
        {
            let value = match packed {
                Some(packed) => c_int::try_from(packed[position]).ok(),
                None => small_int(&field(index)),
            };
            let Some(value) = value else {
                return Ok(None);
            };
            *count = value;
        }
        let [argcount, posonlyargcount, kwonlyargcount, nlocals, stacksize, flags] = counts;
        // The type's own checks, which the C constructor leaves to a
        // SystemError: let the type raise its ValueError.
        if argcount < posonlyargcount || posonlyargcount < 0 || kwonlyargcount < 0 || nlocals < 0 {
            return Ok(None);
        }
        let Some(firstlineno) = small_int(&field(FIRSTLINENO)) else {
            return Ok(None);
        };
        let exact_bytes = [CODE, LINETABLE, EXCEPTIONTABLE]
            .iter()
            .all(|&index| field(index).is_exact_instance_of::<PyBytes>());
        let exact_strs = [FILENAME, NAME, QUALNAME]
            .iter()
            .all(|&index| field(index).is_exact_instance_of::<PyString>());
        if !exact_bytes || !exact_strs || !field(CONSTS).is_exact_instance_of::<PyTuple>() {
            return Ok(None);
        }
        let mut free_vars = 0;
        for index in [NAMES, VARNAMES, FREEVARS, CELLVARS] {
            let Some(count) = names_tuple(&field(index)) else {
                return Ok(None);
            };
            if index == FREEVARS {
                free_vars = count;
            }
        }
        // Checked once every field is known to suit the constructor: a
        // field that does not goes to `CodeType(...)`, which checks it.
        if let Ok(bytecode) = field(CODE).cast::<PyBytes>() {
            super::check_bytecode(py, bytecode.as_bytes())?;
        }
        super::audit(py, [field(CODE), field(FILENAME), field(NAME)], counts)?;
        let raw = |index: usize| field(index).as_ptr();
        // SAFETY: every pointer is a live item of `fields`, of the type
        // the constructor expects (checked above); it borrows them and
        // returns a new reference, or null with an exception set.
        let code = unsafe {
            new_code_311(
                argcount,
                posonlyargcount,
                kwonlyargcount,
                nlocals,
                stacksize,
                flags,
                raw(CODE),
                raw(CONSTS),
                raw(NAMES),
                raw(VARNAMES),
                raw(FREEVARS),
                raw(CELLVARS),
                raw(FILENAME),
                raw(NAME),
                raw(QUALNAME),
                firstlineno,
                raw(LINETABLE),
                raw(EXCEPTIONTABLE),
            )
        };
        // SAFETY: a new reference or null with an exception set.
        let code = unsafe { Bound::from_owned_ptr_or_err(py, code.cast::<ffi::PyObject>())? };
        Ok(Some((code, free_vars)))
    }

    /// An exact int that fits a C int (read by the C API directly: the
    /// generic extraction cost twice as much, seven times a function).
    fn small_int(value: &Bound<'_, PyAny>) -> Option<c_int> {
        if !value.is_exact_instance_of::<PyInt>() {
            return None;
        }
        // SAFETY: `value` is an int; a failed conversion (overflow) sets
        // an exception, which is cleared: the type will raise its own.
        let wide = unsafe { ffi::PyLong_AsLong(value.as_ptr()) };
        if wide == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
            return None;
        }
        c_int::try_from(wide).ok()
    }

    /// The length of a tuple of exact strs (the type copies other name
    /// tuples into such; the constructor would refuse them).
    fn names_tuple(value: &Bound<'_, PyAny>) -> Option<usize> {
        let names = value.cast_exact::<PyTuple>().ok()?;
        names
            .iter_borrowed()
            .all(|name| name.is_exact_instance_of::<PyString>())
            .then(|| names.len())
    }
}
