//! The writer's memo: objects already written, by identity (as the C
//! pickler keeps it), and names already written, by their text.
//!
//! By text: the strings inside a function's, class's or code object's
//! by-value parts, the names of the globals there included. The same name
//! often reaches the pickle as different `str` objects (a code object's
//! `co_name` and the function's `__name__`, the module name of each global):
//! written once, the pickle is smaller, and its bytes do not depend on which
//! strings the process happened to intern.

use std::cell::Cell;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

#[cfg(test)]
use crate::quick_hash::hash_bytes;
use crate::writer::id_table::IdTable;
use crate::writer::str_addresses::StrAddresses;
pub(crate) use crate::writer::text_table::TextSlot;
use crate::writer::text_table::TextTable;

/// Room made at the first entry. 16 would keep the table in the C
/// allocator's per-thread cache (~1k less for a small pickle), but a
/// class's pickle, with a hundred or so entries, then regrows three more
/// times: counted, class dumps +3.3k. Class dumps matter more.
const FIRST_CAPACITY: usize = 64;
/// Maps up to this many entries go back to the thread's spares when a dump
/// ends; a larger one (a dump of much data) is freed instead.
const SPARE_CAPACITY: usize = 1024;

thread_local! {
    /// Emptied maps of the last dump on this thread: most dumps memoize a
    /// little, and allocating and freeing the two maps cost a function
    /// dump ~1.5k instructions. A dump inside a dump (a reducer that
    /// pickles) finds none and makes its own.
    static SPARE_MAPS: Cell<(Option<IdTable>, Option<TextTable>)> = const { Cell::new((None, None)) };
    /// The emptied keep-alive list of the last dump on this thread, kept
    /// for the same reason (its room for 64 cost a malloc and a free).
    static SPARE_ALIVE: Cell<Vec<Py<PyAny>>> = const { Cell::new(Vec::new()) };
    /// The last dump's table of strings by address, emptied.
    static SPARE_ADDRESSES: Cell<Option<Box<StrAddresses>>> = const { Cell::new(None) };
}

pub(crate) struct Memo<'py> {
    by_id: IdTable,
    by_text: TextTable,
    /// Strings written by text, by address (see `str_addresses.rs`): taken
    /// at the first, so that a dump of plain data never touches it.
    by_address: Option<Box<StrAddresses>>,
    /// Keeps every memoized object alive, so that no address is reused
    /// by a temporary made later in the same dump.
    alive: Vec<Bound<'py, PyAny>>,
    next: u32,
}

/// A name's UTF-8 bytes with their hash: the hash `str` gives the string
/// they encode (see `scalars::str_hash`), which CPython keeps in the str
/// once made, so a name is not read again to be hashed. Equal strings have
/// equal hashes, and the table tells texts apart by their bytes, so which
/// hash it is changes where a text sits in the table, never its index.
#[derive(Clone, Copy)]
pub(crate) struct Text<'a> {
    bytes: &'a [u8],
    hash: u64,
}

impl<'a> Text<'a> {
    /// `bytes` with a hash of our own, for tests that have no str.
    #[cfg(test)]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            hash: hash_bytes(bytes),
        }
    }

    /// `bytes` with the hash of the string they encode.
    #[inline]
    pub(crate) fn with_hash(bytes: &'a [u8], hash: u64) -> Self {
        Self { bytes, hash }
    }

    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }
}

impl<'py> Memo<'py> {
    pub(crate) fn new() -> Self {
        Self {
            by_id: IdTable::new(),
            by_text: TextTable::new(),
            by_address: None,
            alive: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn get(&self, obj: &Bound<'py, PyAny>) -> Option<u32> {
        self.by_id.get(obj.as_ptr() as usize)
    }

    /// The index of `text`, if the pickle holds it, without giving it one
    /// when it does not (most writers ask `find_or_put_text`).
    pub(crate) fn get_text(&self, text: Text<'_>) -> Option<u32> {
        self.by_text.get(text.bytes, text.hash)
    }

    /// Gives `obj` the next index and returns it.
    pub(crate) fn put(&mut self, obj: &Bound<'py, PyAny>) -> u32 {
        if self.by_id.is_empty() {
            self.prepare_ids();
        }
        let index = self.take_index();
        self.by_id.insert(obj.as_ptr() as usize, index);
        self.keep_alive(obj);
        index
    }

    /// The index of `text` if the pickle holds it already; else the next
    /// index, now `text`'s, with `owner` (which holds `text`'s bytes) kept
    /// alive. One probe of the table for both: a lookup, then an insert
    /// when it missed, cost a new name two (~80 instructions each).
    #[inline]
    pub(crate) fn find_or_put_text(&mut self, text: Text<'_>, owner: &Bound<'py, PyAny>) -> TextSlot {
        self.prepare_texts();
        // SAFETY: `owner` holds `text`'s bytes; when they are new, it is
        // kept alive below until `drop` clears the table.
        let slot = unsafe { self.by_text.find_or_insert(text.bytes, text.hash, self.next) };
        if let TextSlot::New(_) = slot {
            self.next += 1;
            self.keep_alive(owner);
        }
        slot
    }

    /// The index of the string `obj` if this dump wrote it (or an equal
    /// one) by text and noted it by its address.
    #[inline]
    pub(crate) fn text_at_address(&self, obj: &Bound<'py, PyAny>) -> Option<u32> {
        self.by_address.as_ref()?.get(obj.as_ptr() as usize)
    }

    /// Notes that the string `obj`, whose text is at `index`, may be found
    /// by its address for the rest of the dump; `kept` says whether the
    /// memo keeps it alive already (it owns a text of the table).
    #[inline]
    pub(crate) fn note_text_address(&mut self, obj: &Bound<'py, PyAny>, index: u32, kept: bool) {
        if !kept {
            self.keep_alive(obj);
        }
        self.by_address
            .get_or_insert_with(take_spare_addresses)
            .put(obj.as_ptr() as usize, index);
    }

    /// Before the first text: the thread's spare map, or a new one.
    #[inline]
    fn prepare_texts(&mut self) {
        if self.by_text.capacity() == 0 {
            self.by_text = take_spare_texts();
        }
    }

    /// Records that `obj` is at `index`, given by a replayed recording.
    pub(crate) fn put_at(&mut self, obj: &Bound<'py, PyAny>, index: u32) {
        if self.by_id.is_empty() {
            self.prepare_ids();
        }
        self.by_id.insert(obj.as_ptr() as usize, index);
        self.keep_alive(obj);
    }

    /// Before the first object: the thread's spare map, or a new one that
    /// skips the first few regrowths (none at all is made for atoms).
    fn prepare_ids(&mut self) {
        if self.by_id.capacity() == 0 {
            self.by_id = take_spare_ids();
        }
    }

    #[inline]
    fn keep_alive(&mut self, obj: &Bound<'py, PyAny>) {
        if self.alive.capacity() == 0 {
            // Whichever of the memo's writes comes first: a replayed code
            // object's strings often do.
            self.alive = spare_alive();
        }
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
    pub(crate) fn carry(mut self) -> Option<CarriedMemo> {
        // Taken, not moved: `Drop` still runs and hands the emptied text map
        // back for reuse; the carried objects keep its texts alive meanwhile.
        (self.next > 0).then(|| CarriedMemo {
            by_id: std::mem::take(&mut self.by_id),
            _alive: std::mem::take(&mut self.alive).into_iter().map(Bound::unbind).collect(),
            len: self.next,
        })
    }
}

/// The memo a `Pickler`'s native dump ended with. The C pickler keeps its
/// memo across the dumps of one pickler, and a later pickle may refer to
/// what an earlier one memoized; so the next dump that the C pickler makes
/// starts from this memo (see `pickler_dump.rs`).
pub(crate) struct CarriedMemo {
    by_id: IdTable,
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
        for (address, index) in self.by_id.iter() {
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

impl Drop for Memo<'_> {
    fn drop(&mut self) {
        // Emptied before `alive` lets go of the texts they point into.
        let ids = reusable_ids(std::mem::take(&mut self.by_id));
        let texts = reusable_texts(std::mem::replace(&mut self.by_text, TextTable::new()));
        if let Some(mut addresses) = self.by_address.take() {
            addresses.clear();
            let _ = SPARE_ADDRESSES.try_with(|spare| spare.set(Some(addresses)));
        }
        keep_spare_alive(std::mem::take(&mut self.alive));
        if ids.is_none() && texts.is_none() {
            return;
        }
        let _ = SPARE_MAPS.try_with(|spare| {
            let (spare_ids, spare_texts) = spare.take();
            spare.set((spare_ids.or(ids), spare_texts.or(texts)));
        });
    }
}

/// The thread's spare table of objects, or a new one with room for the
/// first entries.
fn take_spare_ids() -> IdTable {
    let spare = SPARE_MAPS
        .try_with(|spare| {
            let (ids, texts) = spare.take();
            spare.set((None, texts));
            ids
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| IdTable::with_capacity(FIRST_CAPACITY))
}

/// The thread's spare text table, or a new one with room for the first texts.
fn take_spare_texts() -> TextTable {
    let spare = SPARE_MAPS
        .try_with(|spare| {
            let (ids, texts) = spare.take();
            spare.set((ids, None));
            texts
        })
        .ok()
        .flatten();
    spare.unwrap_or_else(|| TextTable::with_capacity(FIRST_CAPACITY))
}

/// The thread's spare table of strings by address (empty), or a new one.
#[cold]
#[inline(never)]
fn take_spare_addresses() -> Box<StrAddresses> {
    let spare = SPARE_ADDRESSES.try_with(Cell::take).ok().flatten();
    spare.unwrap_or_else(|| Box::new(StrAddresses::new()))
}

/// The thread's spare keep-alive list (empty), or a new one with room for
/// the first entries.
#[cold]
#[inline(never)]
fn spare_alive<'py>() -> Vec<Bound<'py, PyAny>> {
    let spare = SPARE_ALIVE.try_with(Cell::take).unwrap_or_default();
    if spare.capacity() == 0 {
        return Vec::with_capacity(FIRST_CAPACITY);
    }
    let mut spare = std::mem::ManuallyDrop::new(spare);
    // SAFETY: an empty list's room, handed from `Py` to `Bound`, which has
    // the same size and alignment (a pointer; checked below).
    unsafe { Vec::from_raw_parts(spare.as_mut_ptr().cast(), 0, spare.capacity()) }
}

/// Lets go of the objects in `alive`, and keeps its room for the next dump
/// on this thread when it is not large.
fn keep_spare_alive(mut alive: Vec<Bound<'_, PyAny>>) {
    alive.clear();
    if alive.capacity() == 0 || alive.capacity() > SPARE_CAPACITY {
        return;
    }
    let mut alive = std::mem::ManuallyDrop::new(alive);
    // SAFETY: as in `spare_alive`, the other way round.
    let spare: Vec<Py<PyAny>> = unsafe { Vec::from_raw_parts(alive.as_mut_ptr().cast(), 0, alive.capacity()) };
    let _ = SPARE_ALIVE.try_with(|cell| cell.set(spare));
}

const _: () = assert!(
    std::mem::size_of::<Bound<'static, PyAny>>() == std::mem::size_of::<Py<PyAny>>()
        && std::mem::align_of::<Bound<'static, PyAny>>() == std::mem::align_of::<Py<PyAny>>()
);

/// `table` emptied, if it is worth keeping for the next dump.
fn reusable_texts(mut table: TextTable) -> Option<TextTable> {
    if table.capacity() == 0 || table.capacity() > SPARE_CAPACITY {
        return None;
    }
    table.clear();
    Some(table)
}

/// `table` emptied, if it is worth keeping for the next dump.
fn reusable_ids(mut table: IdTable) -> Option<IdTable> {
    if table.capacity() == 0 || table.capacity() > SPARE_CAPACITY {
        return None;
    }
    table.clear();
    Some(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner_of<'py>(py: Python<'py>, text: &[u8]) -> Bound<'py, PyAny> {
        pyo3::types::PyBytes::new(py, text).into_any()
    }

    fn bytes_of<'a>(owner: &'a Bound<'_, PyAny>) -> &'a [u8] {
        owner.cast::<pyo3::types::PyBytes>().unwrap().as_bytes()
    }

    #[test]
    fn indexes_count_up_across_objects_and_texts() {
        crate::testing::with_python(|py| {
            let mut memo = Memo::new();
            let first = pyo3::types::PyList::empty(py).into_any();
            let second = pyo3::types::PyList::empty(py).into_any();
            assert_eq!(memo.get(&first), None);
            assert_eq!(memo.put(&first), 0);
            let owner = owner_of(py, b"builtins");
            assert_eq!(
                memo.find_or_put_text(Text::new(bytes_of(&owner)), &owner),
                TextSlot::New(1)
            );
            assert_eq!(memo.put(&second), 2);
            assert_eq!(memo.get(&first), Some(0));
            assert_eq!(memo.get_text(Text::new(b"builtins")), Some(1));
            assert_eq!(memo.get_text(Text::new(b"builtin")), None);
        });
    }

    #[test]
    fn a_text_met_again_is_found_at_its_first_index() {
        crate::testing::with_python(|py| {
            let mut memo = Memo::new();
            let first = owner_of(py, b"__name__");
            let again = owner_of(py, b"__name__");
            let other = owner_of(py, b"__qualname__");
            assert_eq!(
                memo.find_or_put_text(Text::new(bytes_of(&first)), &first),
                TextSlot::New(0)
            );
            assert_eq!(
                memo.find_or_put_text(Text::new(bytes_of(&other)), &other),
                TextSlot::New(1)
            );
            assert_eq!(
                memo.find_or_put_text(Text::new(bytes_of(&again)), &again),
                TextSlot::Found(0)
            );
            // Only the owners of new texts are kept alive.
            assert_eq!(memo.alive.len(), 2);
            assert_eq!(memo.take_index(), 2);
        });
    }

    #[test]
    fn a_new_memo_remembers_nothing_of_the_last_dumps_maps() {
        crate::testing::with_python(|py| {
            let list = pyo3::types::PyList::empty(py).into_any();
            let owner = owner_of(py, b"__name__");
            let mut first = Memo::new();
            first.put(&list);
            first.find_or_put_text(Text::new(bytes_of(&owner)), &owner);
            drop(first);
            // The second reuses the first's emptied maps.
            let mut second = Memo::new();
            assert_eq!(second.get(&list), None);
            assert_eq!(second.get_text(Text::new(b"__name__")), None);
            assert_eq!(second.put(&list), 0);
            assert_eq!(second.get_text(Text::new(b"__name__")), None);
            assert_eq!(
                second.find_or_put_text(Text::new(bytes_of(&owner)), &owner),
                TextSlot::New(1)
            );
        });
    }

    #[test]
    fn texts_with_the_same_hash_are_told_apart_by_their_bytes() {
        crate::testing::with_python(|py| {
            let mut memo = Memo::new();
            let owner = owner_of(py, b"ab");
            let bytes = bytes_of(&owner);
            let hash = Text::new(bytes).hash();
            // A forged hash: what a collision would look like to the map.
            let other = owner_of(py, b"ba");
            let forged = Text {
                bytes: bytes_of(&other),
                hash,
            };
            assert_eq!(memo.find_or_put_text(Text { bytes, hash }, &owner), TextSlot::New(0));
            assert_eq!(memo.get_text(forged), None);
            assert_eq!(memo.find_or_put_text(forged, &other), TextSlot::New(1));
            assert_eq!(memo.get_text(Text::new(b"ab")), Some(0));
        });
    }
}
