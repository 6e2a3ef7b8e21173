//! Strings a dump has written by text, by their address: the same `str`
//! object reaches a class's or function's parts many times over (an
//! attribute name as an annotation key, a field's name, a module name as
//! every function's `__module__`), and finding it again by its text meant
//! hashing it and probing the text table each time (~100 instructions).
//!
//! A small direct-mapped table: an address has one slot, and a newcomer
//! takes the slot over. A miss only sends the string to the text table, so
//! what is evicted costs time, never bytes. The memo keeps every string
//! entered here alive until the dump ends, so no address can come to mean
//! another string while the table holds it.

use crate::writer::generations::{self, AddressSlot as Slot, EMPTY_ADDRESS_SLOT as EMPTY, SPREAD};

/// Slots: a dump meets a hundred or so distinct strings by text (a
/// dataclass), and two that share a slot evict each other; with 64 the
/// count of a dump moved by ~1.7k with where the strings happened to be
/// allocated.
const SLOTS: usize = 256;

pub(crate) struct StrAddresses {
    slots: [Slot; SLOTS],
    /// Never 0, so that a slot left as `EMPTY` is empty; a new one empties
    /// the table for the next dump without a pass over the slots.
    generation: u32,
}

impl StrAddresses {
    pub(crate) fn new() -> Self {
        Self {
            slots: [EMPTY; SLOTS],
            generation: 1,
        }
    }

    /// The memo index of the string at `address`, if this dump wrote it by
    /// text and its slot still holds it.
    #[inline]
    pub(crate) fn get(&self, address: usize) -> Option<u32> {
        let slot = &self.slots[slot_of(address)];
        (slot.generation == self.generation && slot.address == address).then_some(slot.index)
    }

    /// Notes that the string at `address` (kept alive for the rest of the
    /// dump) is at `index`.
    #[inline]
    pub(crate) fn put(&mut self, address: usize, index: u32) {
        self.slots[slot_of(address)] = Slot {
            address,
            index,
            generation: self.generation,
        };
    }

    /// Forgets every address, for the next dump.
    pub(crate) fn clear(&mut self) {
        if generations::advance(&mut self.generation) {
            self.slots = [EMPTY; SLOTS];
        }
    }
}

/// An address's slot: the top bits of its product with `SPREAD`, which
/// mixes in every bit (objects are 16-byte aligned, and strings made
/// together sit close).
#[inline]
fn slot_of(address: usize) -> usize {
    ((address as u64).wrapping_mul(SPREAD) >> (64 - SLOTS.trailing_zeros())) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_found_at_the_index_it_was_given() {
        let mut table = StrAddresses::new();
        assert_eq!(table.get(0x1000), None);
        table.put(0x1000, 7);
        table.put(0x2010, 9);
        assert_eq!(table.get(0x1000), Some(7));
        assert_eq!(table.get(0x2010), Some(9));
        assert_eq!(table.get(0x3000), None);
    }

    #[test]
    fn a_newcomer_takes_its_slot_over() {
        let mut table = StrAddresses::new();
        let first = 0x10_0000;
        let second = (0..1 << 20)
            .map(|step| first + 16 * step)
            .find(|&address| address != first && slot_of(address) == slot_of(first))
            .unwrap();
        table.put(first, 1);
        table.put(second, 2);
        assert_eq!(table.get(first), None);
        assert_eq!(table.get(second), Some(2));
    }

    #[test]
    fn a_cleared_table_holds_nothing() {
        let mut table = StrAddresses::new();
        table.put(0x1000, 3);
        table.clear();
        assert_eq!(table.get(0x1000), None);
        // Address 0 in an empty slot is not a hit either.
        assert_eq!(table.get(0), None);
        // When the generation comes round again, the slots are wiped.
        let mut table = StrAddresses::new();
        table.put(0x2000, 4);
        table.generation = u32::MAX;
        table.clear();
        assert_eq!(table.generation, 1);
        assert_eq!(table.get(0x2000), None);
    }
}
