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

/// Slots, one bit each in `filled`.
const SLOTS: usize = 64;

pub(crate) struct StrAddresses {
    /// Which slots hold an address in this dump: emptied by clearing one
    /// word, whatever the keys still say.
    filled: u64,
    addresses: [usize; SLOTS],
    indexes: [u32; SLOTS],
}

impl StrAddresses {
    pub(crate) fn new() -> Self {
        Self {
            filled: 0,
            addresses: [0; SLOTS],
            indexes: [0; SLOTS],
        }
    }

    /// The memo index of the string at `address`, if this dump wrote it by
    /// text and its slot still holds it.
    #[inline]
    pub(crate) fn get(&self, address: usize) -> Option<u32> {
        let slot = slot_of(address);
        (self.filled & (1 << slot) != 0 && self.addresses[slot] == address).then(|| self.indexes[slot])
    }

    /// Notes that the string at `address` (kept alive for the rest of the
    /// dump) is at `index`.
    #[inline]
    pub(crate) fn put(&mut self, address: usize, index: u32) {
        let slot = slot_of(address);
        self.addresses[slot] = address;
        self.indexes[slot] = index;
        self.filled |= 1 << slot;
    }

    /// Forgets every address, for the next dump.
    pub(crate) fn clear(&mut self) {
        self.filled = 0;
    }
}

/// Objects are 16-byte aligned, so the low four bits say nothing; the bits
/// above the slot's are folded in, as strings made together sit close.
#[inline]
fn slot_of(address: usize) -> usize {
    ((address >> 4) ^ (address >> 10)) % SLOTS
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
        // The same slot: bits 4.. and 10.. fold to the same value.
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
    }
}
