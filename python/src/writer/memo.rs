//! The writer's memo: objects already written, by identity (as the C
//! pickler keeps it), and names already written, by their text.
//!
//! By text: the strings inside a function's, class's or code object's
//! by-value parts, the names of the globals there included. The same name
//! often reaches the pickle as different `str` objects (a code object's
//! `co_name` and the function's `__name__`, the module name of each global):
//! written once, the pickle is smaller, and its bytes do not depend on which
//! strings the process happened to intern.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::prelude::*;

/// A fast, non-cryptographic hash for pointers and short names (the memo
/// never sees keys chosen to collide: they are addresses and names the
/// writer itself produces).
#[derive(Default)]
pub(crate) struct QuickHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl QuickHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    fn write_usize(&mut self, value: usize) {
        // Objects are 16-byte aligned: the low bits carry no information.
        self.add((value >> 4) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type QuickMap<K, V> = HashMap<K, V, BuildHasherDefault<QuickHasher>>;

const FIRST_CAPACITY: usize = 64;

pub(crate) struct Memo<'py> {
    by_id: QuickMap<usize, u32>,
    by_text: QuickMap<Box<[u8]>, u32>,
    /// Keeps every memoized object alive, so that no address is reused
    /// by a temporary made later in the same dump.
    alive: Vec<Bound<'py, PyAny>>,
    next: u32,
}

impl<'py> Memo<'py> {
    pub(crate) fn new() -> Self {
        Self {
            by_id: QuickMap::default(),
            by_text: QuickMap::default(),
            alive: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn get(&self, obj: &Bound<'py, PyAny>) -> Option<u32> {
        if self.by_id.is_empty() {
            return None;
        }
        self.by_id.get(&(obj.as_ptr() as usize)).copied()
    }

    pub(crate) fn get_text(&self, text: &[u8]) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// Gives `obj` the next index and returns it.
    pub(crate) fn put(&mut self, obj: &Bound<'py, PyAny>) -> u32 {
        if self.alive.is_empty() {
            // Skips the first few regrowths; none at all for atoms.
            self.by_id.reserve(FIRST_CAPACITY);
            self.alive.reserve(FIRST_CAPACITY);
        }
        let index = self.take_index();
        self.by_id.insert(obj.as_ptr() as usize, index);
        self.alive.push(obj.clone());
        index
    }

    /// Records that the string at `index` reads `text`.
    pub(crate) fn put_text(&mut self, text: &[u8], index: u32) {
        self.by_text.insert(text.into(), index);
    }

    /// The next index, for a value written without an object of its own.
    pub(crate) fn take_index(&mut self) -> u32 {
        let index = self.next;
        self.next += 1;
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_count_up_across_objects_and_texts() {
        crate::testing::with_python(|py| {
            let mut memo = Memo::new();
            let first = pyo3::types::PyList::empty(py).into_any();
            let second = pyo3::types::PyList::empty(py).into_any();
            assert_eq!(memo.get(&first), None);
            assert_eq!(memo.put(&first), 0);
            let text_index = memo.take_index();
            memo.put_text(b"builtins", text_index);
            assert_eq!(memo.put(&second), 2);
            assert_eq!(memo.get(&first), Some(0));
            assert_eq!(memo.get_text(b"builtins"), Some(1));
            assert_eq!(memo.get_text(b"builtin"), None);
        });
    }

    #[test]
    fn the_hash_separates_texts_that_share_a_prefix() {
        let hash = |text: &[u8]| {
            let mut hasher = QuickHasher::default();
            hasher.write(text);
            hasher.finish()
        };
        assert_ne!(hash(b"flightpickle._reconstruct"), hash(b"flightpickle._reconstructs"));
        assert_ne!(hash(b"a"), hash(b"b"));
    }
}
