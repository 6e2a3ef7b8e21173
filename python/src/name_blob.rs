//! How a code object's name tuples (`co_names`, `co_varnames`,
//! `co_freevars`, `co_cellvars`) travel in the native function shape: one
//! bytes object per tuple, each name written as its UTF-8 length in one
//! byte and then its UTF-8, instead of one string opcode per name.
//!
//! Why: the loader would otherwise decode every name into a new str, which
//! the code constructor then hashes and looks up among the interned strs,
//! ~600 instructions a name and the larger part of a small function's
//! load. From a blob the loader takes each name from a per-thread table of
//! the interned strs it made before: a hash and a compare of a few bytes.
//!
//! A tuple that cannot travel so (a str subclass, a name of more than 255
//! bytes, a lone surrogate) keeps its tuple form, which loads as before.

use std::cell::RefCell;
use std::hash::Hasher;
use std::sync::OnceLock;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

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

/// `names` as a blob; None when it cannot or need not travel as one (an
/// empty tuple costs one opcode as it is).
pub(crate) fn encode<'py>(names: &Bound<'py, PyAny>) -> Option<Bound<'py, PyBytes>> {
    let names = names.cast_exact::<PyTuple>().ok()?;
    if names.is_empty() {
        return None;
    }
    let mut blob = Vec::with_capacity(8 * names.len());
    for name in names.iter_borrowed() {
        let name = name.cast_exact::<PyString>().ok()?;
        // A lone surrogate has no UTF-8: the tuple keeps it.
        let text = name.to_str().ok()?;
        blob.push(u8::try_from(text.len()).ok()?);
        blob.extend_from_slice(text.as_bytes());
    }
    Some(PyBytes::new(names.py(), &blob))
}

/// The tuple of interned strs `blob` holds.
pub(crate) fn decode<'py>(blob: &Bound<'py, PyBytes>) -> PyResult<Bound<'py, PyTuple>> {
    let py = blob.py();
    let bytes = blob.as_bytes();
    let count = count_names(bytes).ok_or_else(|| {
        PyValueError::new_err("a code object's names are malformed: a name's length runs past the end of its blob")
    })?;
    // SAFETY: a new tuple of `count` empty slots; each is filled below
    // before the tuple is handed out (a tuple freed with empty slots, on an
    // error, skips them).
    let tuple = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyTuple_New(count as ffi::Py_ssize_t))? };
    let fill = |table: &mut Table| -> PyResult<()> {
        let mut rest = bytes;
        for index in 0..count {
            let length = usize::from(rest[0]);
            let name = table.interned(py, &rest[1..], length)?;
            // SAFETY: `index` is below the tuple's length and its slot
            // empty; the slot takes the new reference.
            unsafe { ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index as ffi::Py_ssize_t, name.into_ptr()) };
            rest = &rest[1 + length..];
        }
        Ok(())
    };
    // The table is borrowed once for the blob: making a str runs no Python
    // code that could come back here. Without it (a thread being torn
    // down), the names are made without it.
    TABLE
        .try_with(|table| match table.try_borrow_mut() {
            Ok(mut table) => fill(&mut table),
            Err(_) => fill(&mut Table::default()),
        })
        .unwrap_or_else(|_| fill(&mut Table::default()))?;
    // SAFETY: made by PyTuple_New above.
    Ok(unsafe { tuple.cast_into_unchecked() })
}

/// How many names `bytes` holds; None if a length runs past its end.
fn count_names(mut bytes: &[u8]) -> Option<usize> {
    let mut count = 0;
    while let Some((&length, rest)) = bytes.split_first() {
        bytes = rest.get(usize::from(length)..)?;
        count += 1;
    }
    Some(count)
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
    use super::{Utf8, count_names};

    #[test]
    fn names_are_counted_by_their_lengths() {
        assert_eq!(count_names(b""), Some(0));
        assert_eq!(count_names(b"\x01x\x02ab\x00"), Some(3));
    }

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

    #[test]
    fn a_length_past_the_end_is_malformed() {
        assert_eq!(count_names(b"\x03ab"), None);
        assert_eq!(count_names(b"\x01x\x05"), None);
    }
}
