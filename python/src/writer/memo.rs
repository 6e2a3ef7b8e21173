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
use pyo3::types::{PyDict, PyList};

use crate::quick_hash::QuickMap;

/// Room made at the first entry. 16 would keep the table in the C
/// allocator's per-thread cache (~1k less for a small pickle), but a
/// class's pickle, with a hundred or so entries, then regrows three more
/// times: counted, class dumps +3.3k. Class dumps matter more.
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

    /// What a `Pickler` keeps of this memo after its dump; None when the
    /// pickle memoized nothing.
    pub(crate) fn carry(self) -> Option<CarriedMemo> {
        (self.next > 0).then(|| CarriedMemo {
            by_id: self.by_id,
            _alive: self.alive.into_iter().map(Bound::unbind).collect(),
            len: self.next,
        })
    }
}

/// The memo a `Pickler`'s native dump ended with. The C pickler keeps its
/// memo across the dumps of one pickler, and a later pickle may refer to
/// what an earlier one memoized; so the next dump that the C pickler makes
/// starts from this memo (see `pickler_dump.rs`).
pub(crate) struct CarriedMemo {
    by_id: QuickMap<usize, u32>,
    /// Keeps the memoized objects (and the owners of memoized texts) alive:
    /// never read, only held.
    _alive: Vec<Py<PyAny>>,
    /// How many indexes the pickle used, and so how many entries the
    /// unpickler's memo holds after loading it.
    len: u32,
}

impl CarriedMemo {
    /// This memo as the C pickler's `memo` setter takes it, `{i: (i, obj)}`,
    /// with one entry per index: the C pickler numbers its next entry by
    /// how many it holds. An index with no object of its own (a name
    /// memoized by its text, a container made only for the pickle) gets a
    /// new empty list, which no later object can be.
    pub(crate) fn as_c_memo<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut objects: Vec<Option<usize>> = vec![None; self.len as usize];
        for (&address, &index) in &self.by_id {
            objects[index as usize] = Some(address);
        }
        let memo = PyDict::new(py);
        for (index, address) in objects.into_iter().enumerate() {
            let obj = match address {
                // SAFETY: `_alive` holds a reference to every object in `by_id`.
                Some(address) => unsafe { Bound::from_borrowed_ptr(py, address as *mut pyo3::ffi::PyObject) },
                None => PyList::empty(py).into_any(),
            };
            memo.set_item(index, (index, obj))?;
        }
        Ok(memo)
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
