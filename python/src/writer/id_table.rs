//! The memo's table of objects by address: an open-addressing table made
//! for the two questions the writer asks of it, "which index has the
//! object at this address" and "let it have this one".
//!
//! The std map answered a new entry for ~70 instructions (its hasher's
//! mixing, a probe by groups of control bytes, the check of its room
//! before every insert, and its growth). Here an address is spread by one
//! multiply, a probe walks neighbouring slots, and emptying the table for
//! the next dump is a new generation number rather than a pass over every
//! slot, as the text table does (see `text_table.rs`).
//!
//! A table kept at most half full, with 16-byte slots, takes about twice
//! the memory of a std map of the same addresses; a dump of much data (100k
//! strings, each memoized) made its peak RSS 6 MiB higher, above
//! cloudpickle's. So past `MOST_SLOTS` the addresses move into a std map,
//! which a large memo spends its time in no more than it did before; the
//! small memos of functions and classes, where the speed matters, never
//! get there.

use crate::quick_hash::QuickMap;
use crate::writer::generations::{self, AddressSlot as Slot, EMPTY_ADDRESS_SLOT as EMPTY, SPREAD};

/// The fewest slots a table has once it holds an address.
const MIN_SLOTS: usize = 16;

/// The most slots (1 MiB of them): a table that would grow past them moves
/// its addresses into a std map instead.
const MOST_SLOTS: usize = 1 << 16;

/// The slots of a table whose addresses are in its map: never filled (no
/// generation is 0), so that every probe ends at once and asks the map,
/// and too few for any insert, which then goes to the map.
const LARGE_SLOTS: usize = 2;

pub(crate) struct IdTable {
    /// A power of two long, or empty before the first address.
    slots: Vec<Slot>,
    len: usize,
    /// Never 0, so that a slot left as `EMPTY` is empty.
    generation: u32,
    /// 64 less log2 of the slots: an address starts at the top bits of its
    /// spread.
    shift: u32,
    /// Every address, once the table outgrew `MOST_SLOTS` (`slots` are
    /// then `LARGE_SLOTS`), until it is cleared.
    large: Option<Box<QuickMap<usize, u32>>>,
}

impl Default for IdTable {
    fn default() -> Self {
        Self::new()
    }
}

impl IdTable {
    pub(crate) const fn new() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            generation: 1,
            shift: 64,
            large: None,
        }
    }

    /// Makes room for `addresses` before the first one.
    pub(crate) fn with_capacity(addresses: usize) -> Self {
        let mut table = Self::new();
        table.resize((addresses * 2).next_power_of_two().max(MIN_SLOTS));
        table
    }

    /// How many addresses the table has room for before it grows.
    pub(crate) fn capacity(&self) -> usize {
        match &self.large {
            Some(map) => map.capacity(),
            None => self.slots.len() / 2,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The index given to `address`, if any.
    #[inline]
    pub(crate) fn get(&self, address: usize) -> Option<u32> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(address);
        loop {
            let slot = &self.slots[at];
            if slot.generation != self.generation {
                // A large table's slots are `LARGE_SLOTS`, empty: it is
                // asked here, off the road of the addresses found.
                return match self.large {
                    None => None,
                    Some(_) => self.get_large(address),
                };
            }
            if slot.address == address {
                return Some(slot.index);
            }
            at = (at + 1) & mask;
        }
    }

    /// Gives `address` the index `index`, in place of any it had.
    #[inline]
    pub(crate) fn insert(&mut self, address: usize, index: u32) {
        // Grown before the probe: at most half full, a probe always meets
        // an empty slot. A large table's two slots are always too few.
        if (self.len + 1) * 2 > self.slots.len() && !self.grow() {
            return self.insert_large(address, index);
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(address);
        loop {
            let slot = &mut self.slots[at];
            if slot.generation != self.generation {
                *slot = Slot {
                    address,
                    index,
                    generation: self.generation,
                };
                self.len += 1;
                return;
            }
            if slot.address == address {
                slot.index = index;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Every address with its index, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        let in_map = self
            .large
            .iter()
            .flat_map(|map| map.iter().map(|(&address, &index)| (address, index)));
        self.slots
            .iter()
            .filter(|slot| slot.generation == self.generation)
            .map(|slot| (slot.address, slot.index))
            .chain(in_map)
    }

    /// Forgets every address, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.large = None;
        if generations::advance(&mut self.generation) {
            self.slots.fill(EMPTY);
        }
    }

    /// The first slot `address` may be in. Objects are 16-byte aligned, so
    /// the low bits carry nothing; the multiply carries the rest up.
    #[inline]
    fn home(&self, address: usize) -> usize {
        ((address as u64).wrapping_mul(SPREAD) >> self.shift) as usize
    }

    // The map's roads stay out of line: the small tables' are the ones
    // inlined into the writer.
    #[cold]
    #[inline(never)]
    fn get_large(&self, address: usize) -> Option<u32> {
        self.large.as_ref().and_then(|map| map.get(&address).copied())
    }

    #[cold]
    #[inline(never)]
    fn insert_large(&mut self, address: usize, index: u32) {
        if let Some(map) = &mut self.large
            && map.insert(address, index).is_none()
        {
            self.len += 1;
        }
    }

    /// Doubles the slots, or moves the addresses into a map when that would
    /// pass `MOST_SLOTS`; true when the slots were doubled, false when the
    /// address goes to the map.
    #[cold]
    #[inline(never)]
    fn grow(&mut self) -> bool {
        if self.large.is_some() {
            return false;
        }
        if self.slots.len() >= MOST_SLOTS {
            let mut map = QuickMap::with_capacity_and_hasher(self.len * 2, Default::default());
            map.extend(self.iter());
            self.slots = vec![EMPTY; LARGE_SLOTS];
            self.shift = 64 - LARGE_SLOTS.trailing_zeros();
            self.large = Some(Box::new(map));
            return false;
        }
        self.resize((self.slots.len() * 2).max(MIN_SLOTS));
        true
    }

    /// Moves the addresses into `size` slots (a power of two).
    fn resize(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for slot in old.into_iter().filter(|slot| slot.generation == self.generation) {
            let mut at = self.home(slot.address);
            while self.slots[at].generation == self.generation {
                at = (at + 1) & mask;
            }
            self.slots[at] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_found_at_the_index_it_was_given() {
        let mut table = IdTable::new();
        assert_eq!(table.get(0x1000), None);
        table.insert(0x1000, 3);
        table.insert(0x2010, 4);
        assert_eq!(table.get(0x1000), Some(3));
        assert_eq!(table.get(0x2010), Some(4));
        assert_eq!(table.get(0x3000), None);
        // A second insert replaces the index, as a map's does.
        table.insert(0x1000, 9);
        assert_eq!(table.get(0x1000), Some(9));
        let mut entries: Vec<_> = table.iter().collect();
        entries.sort();
        assert_eq!(entries, vec![(0x1000, 9), (0x2010, 4)]);
    }

    #[test]
    fn growing_keeps_every_address() {
        let mut table = IdTable::with_capacity(4);
        let addresses: Vec<usize> = (0..5000).map(|i| 0x7f00_0000_0000 + 16 * i * 3).collect();
        for (index, &address) in addresses.iter().enumerate() {
            table.insert(address, index as u32);
        }
        assert!(table.capacity() >= 5000);
        for (index, &address) in addresses.iter().enumerate() {
            assert_eq!(table.get(address), Some(index as u32));
        }
        assert_eq!(table.get(0x10), None);
        assert_eq!(table.iter().count(), 5000);
    }

    #[test]
    fn a_table_past_its_most_slots_moves_into_a_map_and_back_when_cleared() {
        let mut table = IdTable::new();
        let count = MOST_SLOTS / 2 + 1000;
        let address = |i: usize| 0x7f00_0000_0000 + 16 * i;
        for i in 0..count {
            table.insert(address(i), i as u32);
        }
        assert!(table.large.is_some() && table.slots.len() == LARGE_SLOTS);
        // A second insert of an address replaces its index, in the map too.
        table.insert(address(7), 70);
        for i in 0..count {
            let expected = if i == 7 { 70 } else { i as u32 };
            assert_eq!(table.get(address(i)), Some(expected));
        }
        assert_eq!(table.get(address(count)), None);
        assert_eq!(table.iter().count(), count);
        assert_eq!(table.len, count);
        table.clear();
        assert!(table.is_empty() && table.large.is_none());
        assert_eq!(table.get(address(1)), None);
        table.insert(address(1), 2);
        assert_eq!(table.get(address(1)), Some(2));
        assert_eq!(table.iter().collect::<Vec<_>>(), vec![(address(1), 2)]);
    }

    #[test]
    fn addresses_sharing_a_home_are_told_apart() {
        let mut table = IdTable::with_capacity(8);
        let first = 0x5000;
        let same_home: Vec<usize> = (1..1 << 20)
            .map(|step| first + 16 * step)
            .filter(|&address| table.home(address) == table.home(first))
            .take(5)
            .collect();
        table.insert(first, 0);
        for (index, &address) in same_home.iter().enumerate() {
            table.insert(address, index as u32 + 1);
        }
        assert_eq!(table.get(first), Some(0));
        for (index, &address) in same_home.iter().enumerate() {
            assert_eq!(table.get(address), Some(index as u32 + 1));
        }
    }

    #[test]
    fn a_cleared_table_holds_nothing_and_fills_again() {
        let mut table = IdTable::new();
        table.insert(0x1000, 0);
        table.clear();
        assert!(table.is_empty());
        assert_eq!(table.get(0x1000), None);
        assert_eq!(table.iter().count(), 0);
        table.insert(0x1000, 5);
        assert_eq!(table.get(0x1000), Some(5));
        // When the generation comes round again, the slots are wiped.
        let mut table = IdTable::new();
        table.insert(0x2000, 0);
        table.generation = u32::MAX;
        table.clear();
        assert_eq!(table.generation, 1);
        table.insert(0x3000, 1);
        assert_eq!(table.get(0x2000), None);
        assert_eq!(table.get(0x3000), Some(1));
    }
}
