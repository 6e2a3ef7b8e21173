//! What the class reader decided about a class by value, kept per class
//! while the class cannot have changed, so that later dumps of it skip the
//! reading, filtering and sorting of its namespace.
//!
//! "Cannot have changed" is told by three stamps, all taken before the
//! reading and checked again after it (the reading can run Python code):
//!
//! - the class's version tag (`tp_version_tag` while
//!   `Py_TPFLAGS_VALID_VERSION_TAG` is set). CPython clears it in
//!   `PyType_Modified`, which every attribute set or delete on the class
//!   runs (`type.__setattr__`, so also `__name__`, `__qualname__`,
//!   `__bases__` and `__class__`), and which also clears it on every
//!   subclass: a change to a base's namespace or bases reaches it. A new
//!   tag comes from a process-wide counter that only grows (clearing the
//!   method cache leaves tags alone on 3.11 and 3.12); once the counter is
//!   spent, types get no valid tag, and then nothing is kept.
//! - the metaclass's version tag, for what is read off the metaclass (its
//!   `__iter__`, whether it is an ABC's), and the metaclass's identity. A
//!   metaclass with its own `mro()` is left out: the MRO it makes can hold
//!   classes that are not bases, whose changes do not reach the class.
//! - the version of the class's own dict (`ma_version_tag`, which every
//!   change of that dict's content moves, even one made without
//!   `PyType_Modified`): the body is kept as positions in that dict, read
//!   again on each hit, so the kept shape holds no object of the class.
//!
//! What the tags do not cover is read again on every dump: an enum's
//! members (their list and map are mutable, as are each member's name and
//! value; the kept body is used only when the member names are the ones it
//! was filtered with), an ABC's registry, the skeleton's arguments and the
//! tracker id. A class whose `__slots__` is a mutable container is not
//! kept (the body is filtered by its content).
//!
//! The dict's version exists on CPython up to 3.13 but is deprecated from
//! 3.12, where CPython still moves it on every change of a dict's content
//! and keeps 3.11's version tags (clearing the method cache leaves them
//! alone, and a new one is never an old one): it is used up to 3.12 (3.11
//! and 3.12 are tested), and later Pythons read every class.
//!
//! The class itself is held by a weak reference, and the shape holds only
//! positions and member names (strs), so nothing kept here keeps a class
//! or its module alive. Each thread keeps at most `ENTRIES` classes.

use std::cell::RefCell;
use std::rc::Rc;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyWeakrefReference;

/// Classes kept per thread; the oldest entry makes room for a new one.
const ENTRIES: usize = 32;

/// What was read off a class, to be read again cheaply while its stamps
/// hold.
pub(crate) struct Known {
    /// The body: positions of its entries in the class's own dict, in the
    /// order they are written.
    pub(crate) body_positions: Vec<ffi::Py_ssize_t>,
    /// For an enum, how its members are read and the member names that
    /// were left out of the body.
    pub(crate) enum_members: Option<KnownMembers>,
    pub(crate) fills_by_build: bool,
    pub(crate) abc: bool,
}

pub(crate) struct KnownMembers {
    /// Whether the members are read from the enum's tables (the class
    /// uses `EnumType.__iter__` and `Enum`'s `name` and `value`).
    pub(crate) from_tables: bool,
    pub(crate) names: Vec<Py<PyAny>>,
}

/// The version stamps of a class and its metaclass; equal stamps mean the
/// class reads as it did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    class_tag: u32,
    metaclass: usize,
    metaclass_tag: u32,
    dict: usize,
    dict_version: u64,
}

struct Entry {
    class: usize,
    weak: Py<PyWeakrefReference>,
    dense: bool,
    stamp: Stamp,
    known: Rc<Known>,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    /// The entry to replace when the table is full.
    next_victim: usize,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::default();
}

impl Stamp {
    /// The class's stamps now; None when it has no valid version tag (or
    /// cannot get one), no dict of its own, or the Python keeps no dict
    /// versions.
    pub(crate) fn of(class: &Bound<'_, PyAny>) -> Option<Self> {
        #[cfg(not(Py_3_13))]
        // `ma_version_tag` is deprecated from 3.12, where CPython still
        // moves it on every change of a dict's content.
        #[allow(deprecated)]
        {
            // SAFETY: type checks and field reads of live objects.
            unsafe {
                if ffi::PyType_Check(class.as_ptr()) == 0 {
                    return None;
                }
                let kind = class.as_ptr().cast::<ffi::PyTypeObject>();
                let metaclass = ffi::Py_TYPE(class.as_ptr());
                let dict = (*kind).tp_dict;
                if dict.is_null() || ffi::PyDict_CheckExact(dict) == 0 {
                    return None;
                }
                // A metaclass's own `mro()` can put in the MRO classes that
                // are not bases of this one, and their changes do not reach
                // its tag.
                if !crate::class_attrs::inherits_types_own(metaclass, pyo3::intern!(class.py(), "mro")) {
                    return None;
                }
                Some(Self {
                    class_tag: version_tag(class.py(), kind)?,
                    metaclass: metaclass as usize,
                    metaclass_tag: version_tag(class.py(), metaclass)?,
                    dict: dict as usize,
                    dict_version: (*dict.cast::<ffi::PyDictObject>()).ma_version_tag,
                })
            }
        }
        #[cfg(Py_3_13)]
        {
            let _ = class;
            None
        }
    }
}

/// `kind`'s valid version tag, assigned first if it has none yet (a type
/// gets one on its first method-cache lookup, as `_PyType_Lookup` makes).
///
/// # Safety
/// `kind` is a live type; the caller is attached.
#[cfg(not(Py_3_13))]
unsafe fn version_tag(py: Python<'_>, kind: *mut ffi::PyTypeObject) -> Option<u32> {
    // SAFETY: flag and field reads of a live type; the lookup only fills
    // the method cache (its result is not used).
    unsafe {
        let valid = |kind: *mut ffi::PyTypeObject| (*kind).tp_flags & ffi::Py_TPFLAGS_VALID_VERSION_TAG != 0;
        if !valid(kind) {
            crate::class_attrs::assign_version_tag(py, kind);
        }
        valid(kind).then(|| (*kind).tp_version_tag)
    }
}

/// What is kept for `class` (read with `dense`) under `stamp`.
pub(crate) fn lookup(class: &Bound<'_, PyAny>, dense: bool, stamp: &Stamp) -> Option<Rc<Known>> {
    let address = class.as_ptr() as usize;
    TABLE
        .try_with(|table| {
            let table = table.try_borrow().ok()?;
            let entry = table
                .entries
                .iter()
                .find(|entry| entry.class == address && entry.dense == dense)?;
            (entry.stamp == *stamp && refers_to(&entry.weak, class)).then(|| entry.known.clone())
        })
        .ok()
        .flatten()
}

/// Keeps `known` for `class` under `stamp`. A class that takes no weak
/// reference is not kept.
pub(crate) fn store(class: &Bound<'_, PyAny>, dense: bool, stamp: Stamp, known: Known) {
    let Ok(weak) = PyWeakrefReference::new(class) else {
        return;
    };
    let entry = Entry {
        class: class.as_ptr() as usize,
        weak: weak.unbind(),
        dense,
        stamp,
        known: Rc::new(known),
    };
    // The entry replaced is dropped after the table is released: freeing
    // its objects must not find the table borrowed.
    let replaced = TABLE.try_with(|table| {
        let mut table = table.try_borrow_mut().ok()?;
        table.put(entry)
    });
    drop(replaced);
}

impl Table {
    /// Puts `entry` in the place of the same class's, or of a dead class's,
    /// or of the oldest; returns the entry it replaces.
    fn put(&mut self, entry: Entry) -> Option<Entry> {
        let same = self
            .entries
            .iter()
            .position(|kept| kept.class == entry.class && kept.dense == entry.dense);
        let place = same.or_else(|| self.entries.iter().position(|kept| is_dead(&kept.weak)));
        if let Some(place) = place {
            return Some(std::mem::replace(&mut self.entries[place], entry));
        }
        if self.entries.len() < ENTRIES {
            self.entries.push(entry);
            return None;
        }
        let place = self.next_victim % ENTRIES;
        self.next_victim = place + 1;
        Some(std::mem::replace(&mut self.entries[place], entry))
    }
}

/// Whether `weak` still refers to `class` (and so the address is not a new
/// object's).
fn refers_to(weak: &Py<PyWeakrefReference>, class: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a live weak reference; the referent is borrowed and only
    // compared by address.
    unsafe { ffi::PyWeakref_GetObject(weak.as_ptr()) == class.as_ptr() }
}

fn is_dead(weak: &Py<PyWeakrefReference>) -> bool {
    // SAFETY: a live weak reference; the referent is only compared.
    unsafe { ffi::PyWeakref_GetObject(weak.as_ptr()) == ffi::Py_None() }
}

/// Positions of the entries of `dict` whose keys are `keys` (by identity),
/// in that order; None if one is not found.
pub(crate) fn positions_of(dict: &Bound<'_, PyAny>, keys: &[&Bound<'_, PyAny>]) -> Option<Vec<ffi::Py_ssize_t>> {
    let mut found: Vec<(*mut ffi::PyObject, ffi::Py_ssize_t)> = Vec::new();
    let mut position: ffi::Py_ssize_t = 0;
    let mut key = std::ptr::null_mut();
    let mut value = std::ptr::null_mut();
    // SAFETY: iterating a live dict; keys are borrowed and only compared.
    while unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) } != 0 {
        found.push((key, position - 1));
    }
    keys.iter()
        .map(|wanted| {
            found
                .iter()
                .find(|(key, _)| *key == wanted.as_ptr())
                .map(|(_, position)| *position)
        })
        .collect()
}

/// The (key, value) entries of `dict` at `positions`; None if one is gone.
pub(crate) fn entries_at<'py>(
    dict: &Bound<'py, PyAny>,
    positions: &[ffi::Py_ssize_t],
) -> Option<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    let py = dict.py();
    let mut entries = Vec::with_capacity(positions.len());
    for &at in positions {
        let mut position = at;
        let mut key = std::ptr::null_mut();
        let mut value = std::ptr::null_mut();
        // SAFETY: a live dict; the borrowed key and value are made strong
        // at once.
        unsafe {
            if ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) == 0 || position != at + 1 {
                return None;
            }
            entries.push((Bound::from_borrowed_ptr(py, key), Bound::from_borrowed_ptr(py, value)));
        }
    }
    Some(entries)
}
