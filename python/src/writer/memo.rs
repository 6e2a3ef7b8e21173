//! The writer's memo: objects already written, by identity (as the C
//! pickler keeps it), and names already written, by their text.
//!
//! By text: the strings inside a function's, class's or code object's
//! by-value parts, the names of the globals there included. The same name
//! often reaches the pickle as different `str` objects (a code object's
//! `co_name` and the function's `__name__`, the module name of each global):
//! written once, the pickle is smaller, and its bytes do not depend on which
//! strings the process happened to intern.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use pyo3::prelude::*;

use crate::quick_hash::QuickMap;

const FIRST_CAPACITY: usize = 64;

pub(crate) struct Memo<'py> {
    by_id: QuickMap<usize, u32>,
    by_text: QuickMap<TextKey, u32>,
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

    /// Records that the string at `index` reads `text`, which `owner`
    /// (kept alive here) holds.
    pub(crate) fn put_text(&mut self, text: &[u8], owner: &Bound<'py, PyAny>, index: u32) {
        if self.by_text.is_empty() {
            self.by_text.reserve(FIRST_CAPACITY);
        }
        self.alive.push(owner.clone());
        self.by_text.insert(TextKey(text.as_ptr(), text.len()), index);
    }

    /// Records that `obj` is at `index`, given by a replayed recording.
    pub(crate) fn put_at(&mut self, obj: &Bound<'py, PyAny>, index: u32) {
        self.by_id.insert(obj.as_ptr() as usize, index);
        self.alive.push(obj.clone());
    }

    /// The next index, for a value written without an object of its own.
    pub(crate) fn take_index(&mut self) -> u32 {
        let index = self.next;
        self.next += 1;
        index
    }
}

/// A name's UTF-8 bytes, borrowed from the object that holds them (a str or
/// bytes object the memo keeps alive, so the bytes neither move nor change):
/// no copy per name.
struct TextKey(*const u8, usize);

impl TextKey {
    fn as_slice(&self) -> &[u8] {
        // SAFETY: see the type: the owner outlives the memo's maps.
        unsafe { std::slice::from_raw_parts(self.0, self.1) }
    }
}

impl Borrow<[u8]> for TextKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Hash for TextKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq for TextKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for TextKey {}

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
            let owner = pyo3::types::PyBytes::new(py, b"builtins").into_any();
            let text_index = memo.take_index();
            memo.put_text(
                owner.cast::<pyo3::types::PyBytes>().unwrap().as_bytes(),
                &owner,
                text_index,
            );
            assert_eq!(memo.put(&second), 2);
            assert_eq!(memo.get(&first), Some(0));
            assert_eq!(memo.get_text(b"builtins"), Some(1));
            assert_eq!(memo.get_text(b"builtin"), None);
        });
    }
}
