//! The memo's table of names by text: an open-addressing table made for
//! the one question the writer asks of it, "is this text in the pickle
//! already, and if not, let it be at this index".
//!
//! The std map answered it for ~70 instructions a name: it mixed the
//! text's hash again, probed by groups, and checked its room before every
//! insert. Here a key's hash is the one `str` gives the text, a probe is a
//! walk along neighbouring slots, and emptying the table for the next dump
//! is a new generation number rather than a pass over every slot.

use crate::writer::generations;

/// A name's UTF-8 bytes, borrowed from an object that the memo keeps alive
/// (so the bytes neither move nor change), their hash and their index.
#[derive(Clone, Copy)]
struct Slot {
    hash: u64,
    start: *const u8,
    len: usize,
    index: u32,
    /// The table's generation when the slot was filled: a slot of an
    /// earlier generation is empty.
    generation: u32,
}

const EMPTY: Slot = Slot {
    hash: 0,
    start: std::ptr::null(),
    len: 0,
    index: 0,
    generation: 0,
};

/// The fewest slots a table has once it holds a text.
const MIN_SLOTS: usize = 16;

pub(crate) struct TextTable {
    /// A power of two long, or empty before the first text.
    slots: Vec<Slot>,
    len: usize,
    /// Never 0, so that a slot left as `EMPTY` is empty.
    generation: u32,
    /// 64 less log2 of the slots: a text starts at its hash's top bits
    /// (any bits of `str`'s hash depend on all of the text).
    shift: u32,
}

/// What `find_or_insert` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextSlot {
    /// The text was there already, at this index.
    Found(u32),
    /// The text was not there; it is now, at the index given.
    New(u32),
}

impl TextTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            generation: 1,
            shift: 64,
        }
    }

    /// How many texts the table has room for before it grows.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len() / 2
    }

    /// Makes room for `texts` before the first one.
    pub(crate) fn with_capacity(texts: usize) -> Self {
        let mut table = Self::new();
        table.resize((texts * 2).next_power_of_two().max(MIN_SLOTS));
        table
    }

    /// The index of `bytes` (whose text's hash is `hash`) if the table
    /// holds it; else `index` becomes its index.
    ///
    /// # Safety
    /// When the text is new, the table keeps `bytes`' address: their owner
    /// must outlive the table's generation (until `clear`).
    #[inline]
    pub(crate) unsafe fn find_or_insert(&mut self, bytes: &[u8], hash: u64, index: u32) -> TextSlot {
        // Grown before the probe: at most half full, a probe always meets
        // an empty slot.
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        loop {
            let slot = &mut self.slots[at];
            if slot.generation != self.generation {
                *slot = Slot {
                    hash,
                    start: bytes.as_ptr(),
                    len: bytes.len(),
                    index,
                    generation: self.generation,
                };
                self.len += 1;
                return TextSlot::New(index);
            }
            // SAFETY: a filled slot of this generation points at live bytes.
            if slot.hash == hash && unsafe { slot_bytes(slot) } == bytes {
                return TextSlot::Found(slot.index);
            }
            at = (at + 1) & mask;
        }
    }

    /// The index of `bytes`, if the table holds them.
    pub(crate) fn get(&self, bytes: &[u8], hash: u64) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        loop {
            let slot = &self.slots[at];
            if slot.generation != self.generation {
                return None;
            }
            // SAFETY: as in `find_or_insert`.
            if slot.hash == hash && unsafe { slot_bytes(slot) } == bytes {
                return Some(slot.index);
            }
            at = (at + 1) & mask;
        }
    }

    /// Forgets every text, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        if generations::advance(&mut self.generation) {
            self.slots.fill(EMPTY);
        }
    }

    /// The first slot a text with `hash` may be in.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> self.shift) as usize
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.resize((self.slots.len() * 2).max(MIN_SLOTS));
    }

    /// Moves the texts into `size` slots (a power of two).
    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for slot in old.into_iter().filter(|slot| slot.generation == self.generation) {
            let mut at = self.home(slot.hash);
            while self.slots[at].generation == self.generation {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

/// # Safety
/// `slot` is filled, in the table's current generation.
unsafe fn slot_bytes(slot: &Slot) -> &[u8] {
    // SAFETY: see `find_or_insert`: the owner outlives the generation.
    unsafe { std::slice::from_raw_parts(slot.start, slot.len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quick_hash::hash_bytes as hash_text;

    fn put(table: &mut TextTable, text: &'static [u8], index: u32) -> TextSlot {
        // SAFETY: static bytes outlive the table.
        unsafe { table.find_or_insert(text, hash_text(text), index) }
    }

    #[test]
    fn a_text_is_found_at_the_index_it_was_first_given() {
        let mut table = TextTable::new();
        assert_eq!(put(&mut table, b"__name__", 3), TextSlot::New(3));
        assert_eq!(put(&mut table, b"__qualname__", 4), TextSlot::New(4));
        assert_eq!(put(&mut table, b"__name__", 9), TextSlot::Found(3));
        assert_eq!(table.get(b"__qualname__", hash_text(b"__qualname__")), Some(4));
        assert_eq!(table.get(b"__name", hash_text(b"__name")), None);
    }

    #[test]
    fn texts_sharing_a_hash_are_told_apart_by_their_bytes() {
        let mut table = TextTable::new();
        // SAFETY: static bytes; the hash is forged, as a collision would be.
        unsafe {
            assert_eq!(table.find_or_insert(b"ab", 7, 0), TextSlot::New(0));
            assert_eq!(table.find_or_insert(b"ba", 7, 1), TextSlot::New(1));
            assert_eq!(table.find_or_insert(b"ba", 7, 2), TextSlot::Found(1));
        }
        assert_eq!(table.get(b"ab", 7), Some(0));
    }

    #[test]
    fn growing_keeps_every_text() {
        let texts: Vec<&'static [u8]> = (0..1000)
            .map(|i| &*Box::leak(format!("name_{i}").into_bytes().into_boxed_slice()))
            .collect();
        let mut table = TextTable::with_capacity(4);
        for (index, text) in texts.iter().enumerate() {
            assert_eq!(put(&mut table, text, index as u32), TextSlot::New(index as u32));
        }
        assert!(table.capacity() >= 1000);
        for (index, text) in texts.iter().enumerate() {
            assert_eq!(put(&mut table, text, 0), TextSlot::Found(index as u32));
        }
    }

    #[test]
    fn a_cleared_table_holds_nothing_and_fills_again() {
        let mut table = TextTable::new();
        put(&mut table, b"builtins", 0);
        table.clear();
        assert_eq!(table.get(b"builtins", hash_text(b"builtins")), None);
        assert_eq!(put(&mut table, b"builtins", 5), TextSlot::New(5));
        // When the generation comes round again, the slots are wiped:
        // "len" was filled in generation 1, the one that comes back.
        let mut table = TextTable::new();
        put(&mut table, b"len", 0);
        table.generation = u32::MAX;
        table.clear();
        assert_eq!(table.generation, 1);
        assert_eq!(table.get(b"len", hash_text(b"len")), None);
        assert_eq!(put(&mut table, b"len", 2), TextSlot::New(2));
    }
}
