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

#[derive(Clone, Copy)]
struct Slot {
    address: usize,
    index: u32,
    /// The table's generation when the slot was filled: a slot of an
    /// earlier generation is empty.
    generation: u32,
}

const EMPTY: Slot = Slot {
    address: 0,
    index: 0,
    generation: 0,
};

/// The fewest slots a table has once it holds an address.
const MIN_SLOTS: usize = 16;

/// Fibonacci hashing's multiplier (2^64 over the golden ratio, odd): the
/// product's top bits depend on all of the address's bits.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

pub(crate) struct IdTable {
    /// A power of two long, or empty before the first address.
    slots: Vec<Slot>,
    len: usize,
    /// Never 0, so that a slot left as `EMPTY` is empty.
    generation: u32,
    /// 64 less log2 of the slots: an address starts at the top bits of its
    /// spread.
    shift: u32,
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
        self.slots.len() / 2
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
                return None;
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
        // an empty slot.
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
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
        self.slots
            .iter()
            .filter(|slot| slot.generation == self.generation)
            .map(|slot| (slot.address, slot.index))
    }

    /// Forgets every address, keeping the room.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in 2^32 dumps: slots of the generation that comes round
            // again would look filled.
            self.slots.fill(EMPTY);
            self.generation = 1;
        }
    }

    /// The first slot `address` may be in. Objects are 16-byte aligned, so
    /// the low bits carry nothing; the multiply carries the rest up.
    #[inline]
    fn home(&self, address: usize) -> usize {
        ((address as u64).wrapping_mul(SPREAD) >> self.shift) as usize
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        self.resize((self.slots.len() * 2).max(MIN_SLOTS));
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
