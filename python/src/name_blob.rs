//! How a code object's name tuples (`co_names`, `co_varnames`,
//! `co_freevars`, `co_cellvars`) travel in the native function shape: as
//! one bytes object for the four, each tuple written as its number of
//! names (unsigned LEB128) and then each name as its UTF-8 length in one
//! byte and its UTF-8, instead of one string opcode per name and a tuple
//! opcode per tuple. The blob takes `co_names`' place among the fields and
//! None the other three's.
//!
//! Why: the loader would otherwise decode every name into a new str, which
//! the code constructor then hashes and looks up among the interned strs,
//! ~600 instructions a name and the larger part of a small function's
//! load. From a blob the loader takes each name from a per-thread table of
//! the interned strs it made before: a hash and a compare of a few bytes.
//!
//! Tuples that cannot travel so (a str subclass, a name of more than 255
//! bytes, a lone surrogate) keep their tuple form, which loads as before.

use std::cell::RefCell;
use std::hash::Hasher;
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::leb128;
use crate::quick_hash::QuickHasher;
use crate::version;

/// The table's size: names of the code a thread loads (several hundred
/// for a module of helpers) mostly stay in it, at ~24 bytes a slot.
const TABLE_SLOTS: usize = 1024;

/// Where the name tuples are among `CodeType(...)`'s arguments:
/// `co_names` first, then `co_varnames`, `co_freevars` and `co_cellvars`.
pub(crate) fn argument_positions(py: Python<'_>) -> &'static [usize; 4] {
    static POSITIONS: OnceLock<[usize; 4]> = OnceLock::new();
    POSITIONS.get_or_init(|| {
        let arguments = version::code_args(py);
        ["co_names", "co_varnames", "co_freevars", "co_cellvars"].map(|wanted| {
            arguments
                .iter()
                .position(|name| *name == wanted)
                .expect("every CodeType signature has the four name tuples")
        })
    })
}

/// The four name tuples as one blob; None when one cannot travel so, or
/// there are no names at all (four empty tuples cost an opcode each).
pub(crate) fn encode<'py>(tuples: [Bound<'py, PyAny>; 4]) -> Option<Bound<'py, PyBytes>> {
    let any = tuples.iter().any(|names| names.len().is_ok_and(|length| length > 0));
    encode_all(tuples).filter(|_| any)
}

/// The four name tuples as one blob, even when all are empty (a bundled
/// code always has one; see `code_body`); None when one cannot travel so.
pub(crate) fn encode_all<'py>(tuples: [Bound<'py, PyAny>; 4]) -> Option<Bound<'py, PyBytes>> {
    let mut blob = Vec::with_capacity(64);
    for names in &tuples {
        let names = names.cast_exact::<PyTuple>().ok()?;
        leb128::push(&mut blob, u32::try_from(names.len()).ok()?);
        for name in names.iter_borrowed() {
            let name = name.cast_exact::<PyString>().ok()?;
            // A lone surrogate has no UTF-8: the tuple keeps it.
            let text = name.to_str().ok()?;
            blob.push(u8::try_from(text.len()).ok()?);
            blob.extend_from_slice(text.as_bytes());
        }
    }
    Some(PyBytes::new(tuples[0].py(), &blob))
}

/// The four tuples of interned strs `blob` holds.
pub(crate) fn decode<'py>(blob: &Bound<'py, PyBytes>) -> PyResult<[Bound<'py, PyTuple>; 4]> {
    let py = blob.py();
    let mut rest = blob.as_bytes();
    // The table is borrowed once for the blob: making a str runs no Python
    // code that could come back here. Without it (a thread being torn
    // down), the names are made without it.
    let tuples = TABLE
        .try_with(|table| match table.try_borrow_mut() {
            Ok(mut table) => decode_with(py, &mut rest, &mut table),
            Err(_) => decode_with(py, &mut rest, &mut Table::default()),
        })
        .unwrap_or_else(|_| decode_with(py, &mut rest, &mut Table::default()))?;
    if !rest.is_empty() {
        return Err(malformed("bytes follow its last name"));
    }
    Ok(tuples)
}

/// The interned str of `utf8` (a code's name or qualname, from its body;
/// see `code_body`), from this thread's table of names.
pub(crate) fn interned<'py>(py: Python<'py>, utf8: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let length = utf8.len();
    TABLE
        .try_with(|table| match table.try_borrow_mut() {
            Ok(mut table) => table.interned(py, utf8, length),
            Err(_) => Table::default().interned(py, utf8, length),
        })
        .unwrap_or_else(|_| Table::default().interned(py, utf8, length))
}

fn decode_with<'py>(py: Python<'py>, rest: &mut &[u8], table: &mut Table) -> PyResult<[Bound<'py, PyTuple>; 4]> {
    Ok([
        decode_tuple(py, rest, table)?,
        decode_tuple(py, rest, table)?,
        decode_tuple(py, rest, table)?,
        decode_tuple(py, rest, table)?,
    ])
}

/// One tuple: its count, then its names.
fn decode_tuple<'py>(py: Python<'py>, rest: &mut &[u8], table: &mut Table) -> PyResult<Bound<'py, PyTuple>> {
    let count = read_count(rest)?;
    // Every name takes a byte at least: a count past that is malformed (and
    // is not allocated for).
    if count > rest.len() {
        return Err(malformed("a count of names runs past its end"));
    }
    // SAFETY: a new tuple of `count` empty slots; each is filled below
    // before the tuple is handed out (a tuple freed with empty slots, on an
    // error, skips them).
    let tuple = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(count as ffi::Py_ssize_t))? };
    for index in 0..count {
        let (&length, after) = rest.split_first().ok_or_else(|| malformed("a name is missing"))?;
        let length = usize::from(length);
        if length > after.len() {
            return Err(malformed("a name's length runs past its end"));
        }
        let name = table.interned(py, after, length)?;
        // SAFETY: `index` is below the tuple's length and its slot empty;
        // the slot takes the new reference.
        unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, name.into_ptr()) };
        *rest = &after[length..];
    }
    // SAFETY: made by PyTuple_New above.
    Ok(unsafe { tuple.cast_into_unchecked() })
}

fn read_count(rest: &mut &[u8]) -> PyResult<usize> {
    let count = leb128::read(rest).ok_or_else(|| malformed("a count of names is cut short or too wide"))?;
    Ok(count as usize)
}

#[cold]
fn malformed(what: &str) -> PyErr {
    PyValueError::new_err(format!("a code object's names are malformed: {what}"))
}

/// A name seen before, with the interned str made for it.
struct Entry {
    utf8: Utf8,
    text: Py<PyString>,
}

/// A name's UTF-8: up to eight bytes in one word (most names), compared
/// and hashed as one.
#[derive(PartialEq, Eq)]
enum Utf8 {
    Short { word: u64, length: u8 },
    Long(Box<[u8]>),
}

impl Utf8 {
    /// The first `length` bytes of `bytes`.
    fn of(bytes: &[u8], length: usize) -> Self {
        if length > 8 {
            return Utf8::Long(bytes[..length].into());
        }
        let word = match bytes.first_chunk::<8>() {
            // One load, the bytes past the name masked off.
            Some(chunk) => u64::from_le_bytes(*chunk) & low_bytes_mask(length),
            None => bytes[..length]
                .iter()
                .rev()
                .fold(0, |word, &byte| word << 8 | u64::from(byte)),
        };
        Utf8::Short {
            word,
            length: length as u8,
        }
    }

    fn slot(&self) -> usize {
        let hash = match self {
            Utf8::Short { word, length } => (word ^ u64::from(*length)).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            Utf8::Long(utf8) => {
                let mut hasher = QuickHasher::default();
                hasher.write(utf8);
                hasher.finish()
            }
        };
        (hash >> 32) as usize % TABLE_SLOTS
    }
}

/// A mask of the low `length` (at most 8) bytes of a word.
fn low_bytes_mask(length: usize) -> u64 {
    match length {
        0 => 0,
        _ => u64::MAX >> (64 - 8 * length),
    }
}

/// Names by a hash of their UTF-8, direct-mapped: a new name replaces the
/// one in its slot, which bounds the table without any bookkeeping.
#[derive(Default)]
struct Table {
    slots: Vec<Option<Entry>>,
}

thread_local! {
    static TABLE: RefCell<Table> = const { RefCell::new(Table { slots: Vec::new() }) };
}

impl Table {
    /// The interned str of the first `length` bytes of `bytes`, from the
    /// table or made (and kept) now.
    #[inline]
    fn interned<'py>(&mut self, py: Python<'py>, bytes: &[u8], length: usize) -> PyResult<Bound<'py, PyString>> {
        if self.slots.is_empty() {
            self.slots.resize_with(TABLE_SLOTS, || None);
        }
        let key = Utf8::of(bytes, length);
        let slot = key.slot();
        if let Some(entry) = &self.slots[slot]
            && entry.utf8 == key
        {
            return Ok(entry.text.bind(py).clone());
        }
        self.make(py, slot, key, &bytes[..length])
    }

    /// A name not in the table: made, interned, and kept in `slot`.
    #[cold]
    #[inline(never)]
    fn make<'py>(&mut self, py: Python<'py>, slot: usize, key: Utf8, utf8: &[u8]) -> PyResult<Bound<'py, PyString>> {
        let text = std::str::from_utf8(utf8)
            .map_err(|_| PyValueError::new_err("a code object's names are malformed: a name is not UTF-8"))?;
        let text = PyString::intern(py, text);
        self.slots[slot] = Some(Entry {
            utf8: key,
            text: text.clone().unbind(),
        });
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::Utf8;

    #[test]
    fn a_short_name_is_the_same_word_read_in_one_load_or_byte_by_byte() {
        // "abc" followed by more of the blob (one load), and at its end.
        let followed = b"abc\x05hello";
        let at_end = b"abc";
        assert!(Utf8::of(followed, 3) == Utf8::of(at_end, 3));
        assert!(Utf8::of(b"", 0) == Utf8::of(b"\x01x", 0));
        assert!(Utf8::of(b"abcdefgh\x00", 8) == Utf8::of(b"abcdefgh", 8));
        assert!(Utf8::of(b"ab\x00", 3) != Utf8::of(b"ab", 2));
    }
}
