//! Code objects that loads have made, found again by their fields.
//!
//! A worker that runs the same UDF task after task loads the same function
//! each time: the fields of its code are equal from one load to the next,
//! and making the code object (the constructor's checks, interning the
//! names, decoding the name blob, and freeing it all again later) is a
//! tenth to a quarter of the load. Code objects are immutable, and the
//! functions one `def` makes in a loop already share theirs, so a later
//! load may take the code object an earlier one made.
//!
//! A code is kept from its second load on: a process that loads each
//! function once notes only a fingerprint per code. An entry keeps the
//! fields it was made from. A load finds an entry by the fingerprint of its
//! fields, and takes the entry's code only if the fields are the same: of
//! the same exact types, with the same content. Only the types the compiler puts in
//! code objects take part, and `0`, `0.0`, `-0.0` and `False` are told
//! apart, which `==` would not do. A code object among the constants (a
//! nested function, a lambda, and on 3.11 a comprehension) is the same
//! only if it is the very object: the native writer sends it in the shape
//! of a function's code, so a load reuses it too, and from the third load
//! on the code that holds it is found as well (one that came as
//! `CodeType(...)` is new on every load, and its holder is never found).
//! Anything else leaves the code uncached: a subclass, an object some
//! reducer rebuilt, a frozenset constant.
//!
//! Fields of more than `CONTENT_LIMIT` bytes or characters are not cached
//! (comparing them on every load would cost more than it saves), and the
//! cache is emptied when it reaches `CAPACITY` fingerprints: together they
//! bound what it keeps alive.

use std::ffi::c_int;
use std::sync::Mutex;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::code::MadeCode;
use crate::quick_hash::QuickMap;

const CAPACITY: usize = 1024;
const CONTENT_LIMIT: usize = 16 * 1024;

/// A code object a load made, with the fields it was made from and what
/// `make_code` tells its caller.
struct Entry {
    fields: Py<PyTuple>,
    code: Py<PyAny>,
    free_vars: usize,
    names: Option<Py<PyTuple>>,
    audit: Option<ReuseAudit>,
}

/// What the `code.__new__` audit event of a reuse names besides the file
/// name, for fields that hold no code string and name of their own (a
/// bundled body): the code object's own and the body's counts, taken once
/// when the entry is made, so that a load that finds the code neither
/// decodes the body nor looks the name up.
pub(super) struct ReuseAudit {
    pub(super) code_string: Py<PyAny>,
    pub(super) name: Py<PyAny>,
    pub(super) counts: [c_int; 6],
}

/// An earlier load's code object, found for equal fields.
pub(super) struct Found<'py> {
    pub(super) code: Bound<'py, PyAny>,
    pub(super) free_vars: usize,
    pub(super) names: Option<Bound<'py, PyTuple>>,
    pub(super) audit: Option<ReuseAudit>,
}

/// What the cache knows of a fingerprint: only that a load has seen it
/// (a code is kept from its second load on, so that a process that loads
/// each function once pays for no entry), or the code made from it.
enum Slot {
    Seen,
    Made(Entry),
}

type Entries = QuickMap<u64, Slot>;

static LOADED: Mutex<Option<Entries>> = Mutex::new(None);

fn loaded() -> std::sync::MutexGuard<'static, Option<Entries>> {
    LOADED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A hash of `fields`, from what is cheapest to read: the ints (the first
/// line number among them) and the length, first and last eight bytes of
/// each bytes object (the bytecode, the line table, the packed counts and
/// names). Enough to tell most codes apart; `find` compares everything, so
/// two codes that hash alike only take each other's place.
pub(super) fn fingerprint(fields: &Bound<'_, PyTuple>) -> u64 {
    const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
    let step = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    let mut hash = 0u64;
    for item in fields.iter_borrowed() {
        let op = item.as_ptr();
        // SAFETY: `op` is a live item of `fields`; a bytes object's content
        // is `Py_SIZE` bytes.
        unsafe {
            let ty = ffi::Py_TYPE(op);
            if ty == &raw mut ffi::PyBytes_Type {
                let data =
                    std::slice::from_raw_parts(ffi::PyBytes_AS_STRING(op).cast::<u8>(), ffi::Py_SIZE(op) as usize);
                hash = step(hash, data.len() as u64);
                hash = step(hash, word_at(data, 0));
                hash = step(hash, word_at(data, data.len().saturating_sub(8)));
            } else if ty == &raw mut ffi::PyLong_Type {
                hash = step(hash, small_int(op).unwrap_or(i64::MIN) as u64);
            }
        }
    }
    hash
}

/// The (up to) eight bytes of `data` from `at`, zero-padded.
fn word_at(data: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    let available = data.get(at..).unwrap_or_default();
    let length = available.len().min(8);
    word[..length].copy_from_slice(&available[..length]);
    u64::from_le_bytes(word)
}

/// The code object an earlier load made from the same fields.
pub(super) fn find<'py>(fields: &Bound<'py, PyTuple>, fingerprint: u64) -> Option<Found<'py>> {
    let py = fields.py();
    let entries = loaded();
    let Slot::Made(entry) = entries.as_ref()?.get(&fingerprint)? else {
        return None;
    };
    // The comparison runs no Python code, so the lock cannot be asked for
    // again while it is held.
    if !same(entry.fields.as_ptr(), fields.as_ptr()) {
        return None;
    }
    Some(Found {
        code: entry.code.bind(py).clone(),
        free_vars: entry.free_vars,
        names: entry.names.as_ref().map(|names| names.bind(py).clone()),
        audit: entry.audit.as_ref().map(|audit| ReuseAudit {
            code_string: audit.code_string.clone_ref(py),
            name: audit.name.clone_ref(py),
            counts: audit.counts,
        }),
    })
}

/// Keeps a code object just made from `fields`, if a load has made it
/// before; otherwise notes that one has. `audit` is asked for only when
/// the code is kept; an error there leaves it uncached.
pub(super) fn keep(
    fields: &Bound<'_, PyTuple>,
    fingerprint: u64,
    made: &MadeCode<'_>,
    audit: impl FnOnce() -> PyResult<Option<ReuseAudit>>,
) {
    if store(fingerprint, || Slot::Seen, false).is_none() {
        return;
    }
    let mut budget = CONTENT_LIMIT;
    if !cacheable(fields.as_ptr(), &mut budget) {
        return;
    }
    let Ok(audit) = audit() else {
        return;
    };
    let entry = Entry {
        fields: fields.clone().unbind(),
        code: made.code.clone().unbind(),
        free_vars: made.free_vars,
        names: made.names.as_ref().map(|names| names.clone().unbind()),
        audit,
    };
    store(fingerprint, || Slot::Made(entry), true);
}

/// Puts `slot` under `fingerprint`, over what is there only if `replace`;
/// returns what was there (None if nothing was). What leaves the cache is
/// dropped once the lock is let go: freeing a code object may run a weakref
/// callback, which may load.
fn store(fingerprint: u64, slot: impl FnOnce() -> Slot, replace: bool) -> Option<Slot> {
    let mut emptied = None;
    let previous = {
        let mut entries = loaded();
        // Room for a module's worth of functions from the start.
        let entries = entries.get_or_insert_with(|| Entries::with_capacity_and_hasher(64, Default::default()));
        if !replace && entries.contains_key(&fingerprint) {
            return Some(Slot::Seen);
        }
        if entries.len() >= CAPACITY {
            emptied = Some(std::mem::take(entries));
        }
        // A different code whose fields hash alike replaces the entry.
        entries.insert(fingerprint, slot())
    };
    drop(emptied);
    previous
}

/// Empties the cache, so that the next load of each code makes it: for a
/// benchmark of first loads, and for tests.
#[pyfunction]
#[pyo3(name = "_forget_loaded_code")]
pub(crate) fn forget() {
    // The map keeps its room; its code objects are dropped once the lock
    // is let go (see `store`).
    let made: Vec<Slot> = match loaded().as_mut() {
        Some(entries) => entries
            .drain()
            .map(|(_, slot)| slot)
            .filter(|slot| matches!(slot, Slot::Made(_)))
            .collect(),
        None => Vec::new(),
    };
    drop(made);
}

/// How many code objects the cache holds (for tests).
#[pyfunction]
#[pyo3(name = "_loaded_code_count")]
pub(crate) fn count() -> usize {
    let entries = loaded();
    let slots = entries.as_ref().map(|entries| entries.values());
    slots.map_or(0, |slots| slots.filter(|slot| matches!(slot, Slot::Made(_))).count())
}

/// The kinds of item that fields may hold and be cached.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bytes,
    Str,
    Tuple,
    Int,
    Float,
    Complex,
    /// None, True, False and Ellipsis: one object each value, compared by
    /// address.
    Singular,
    /// A code object: immutable, and the same one only if it is the very
    /// object (as a cached one is, load after load).
    Code,
}

/// The kind of `op`, by exact type; None for any other.
fn kind_of(op: *mut ffi::PyObject) -> Option<Kind> {
    // SAFETY: `op` is a live object; the type objects are static.
    unsafe {
        let ty = ffi::Py_TYPE(op);
        if ty == &raw mut ffi::PyBytes_Type {
            Some(Kind::Bytes)
        } else if ty == &raw mut ffi::PyUnicode_Type {
            Some(Kind::Str)
        } else if ty == &raw mut ffi::PyTuple_Type {
            Some(Kind::Tuple)
        } else if ty == &raw mut ffi::PyLong_Type {
            Some(Kind::Int)
        } else if op == ffi::Py_None() || ty == &raw mut ffi::PyBool_Type || op == ffi::Py_Ellipsis() {
            Some(Kind::Singular)
        } else if ty == &raw mut ffi::PyFloat_Type {
            Some(Kind::Float)
        } else if ty == &raw mut ffi::PyComplex_Type {
            Some(Kind::Complex)
        } else if ty == &raw mut ffi::PyCode_Type {
            Some(Kind::Code)
        } else {
            None
        }
    }
}

/// Whether `op` may be part of cached fields: every item of a kind `same`
/// compares, and no more than `budget` bytes or characters of content.
fn cacheable(op: *mut ffi::PyObject, budget: &mut usize) -> bool {
    let Some(kind) = kind_of(op) else {
        return false;
    };
    // SAFETY: `op` is of the kind read; a tuple's indexes are below its length.
    let size = unsafe {
        match kind {
            Kind::Bytes => ffi::Py_SIZE(op),
            Kind::Str => ffi::PyUnicode_GetLength(op),
            Kind::Tuple => {
                return (0..ffi::PyTuple_GET_SIZE(op)).all(|index| cacheable(ffi::PyTuple_GET_ITEM(op, index), budget));
            }
            Kind::Int => return small_int(op).is_some(),
            Kind::Float | Kind::Complex | Kind::Singular | Kind::Code => return true,
        }
    };
    match budget.checked_sub(size as usize) {
        Some(left) => {
            *budget = left;
            true
        }
        None => false,
    }
}

/// Whether `a` and `b` are of the same exact type and hold the same value.
fn same(a: *mut ffi::PyObject, b: *mut ffi::PyObject) -> bool {
    if a == b {
        return true;
    }
    // SAFETY: both are live objects.
    if unsafe { ffi::Py_TYPE(a) != ffi::Py_TYPE(b) } {
        return false;
    }
    let Some(kind) = kind_of(a) else {
        return false;
    };
    match kind {
        Kind::Bytes | Kind::Str => content_of(a, kind).is_some_and(|content| content_of(b, kind) == Some(content)),
        // SAFETY: both are tuples; every index is below both lengths.
        Kind::Tuple => unsafe {
            let length = ffi::PyTuple_GET_SIZE(a);
            length == ffi::PyTuple_GET_SIZE(b)
                && (0..length).all(|index| same(ffi::PyTuple_GET_ITEM(a, index), ffi::PyTuple_GET_ITEM(b, index)))
        },
        Kind::Int => small_int(a).is_some_and(|value| small_int(b) == Some(value)),
        // SAFETY: both are floats, or both complex, as their kind says.
        Kind::Float => unsafe { ffi::PyFloat_AS_DOUBLE(a).to_bits() == ffi::PyFloat_AS_DOUBLE(b).to_bits() },
        Kind::Complex => unsafe {
            ffi::PyComplex_RealAsDouble(a).to_bits() == ffi::PyComplex_RealAsDouble(b).to_bits()
                && ffi::PyComplex_ImagAsDouble(a).to_bits() == ffi::PyComplex_ImagAsDouble(b).to_bits()
        },
        // Distinct objects: distinct values (or, for code, not known to
        // be the same without comparing all of both).
        Kind::Singular | Kind::Code => false,
    }
}

/// The bytes of a bytes object, or the UTF-8 of a str (None for a str with
/// lone surrogates, which has none). Borrowed from the object.
fn content_of<'a>(op: *mut ffi::PyObject, kind: Kind) -> Option<&'a [u8]> {
    // SAFETY: `op` is a bytes object or a str, as `kind` says; the content
    // lives as long as the object, which the caller holds for longer than
    // it reads the slice.
    let (data, size) = unsafe {
        match kind {
            Kind::Bytes => (ffi::PyBytes_AS_STRING(op), ffi::Py_SIZE(op)),
            _ => crate::cpython::str_utf8(op),
        }
    };
    if data.is_null() {
        // SAFETY: the failed call set an exception, which nobody wants:
        // the code is made without the cache.
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    // SAFETY: `data` points at `size` bytes owned by `op`.
    Some(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) })
}

/// An int that fits an i64 (a larger one leaves the code uncached).
fn small_int(op: *mut ffi::PyObject) -> Option<i64> {
    let mut overflow = 0;
    // SAFETY: `op` is an exact int; the call sets no exception for one.
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(op, &mut overflow) };
    (overflow == 0).then_some(value)
}
