//! What the writer's per-dump tables share: each empties itself for the
//! next dump by moving to a new generation number instead of a pass over
//! its slots (a slot filled in an earlier generation is empty), and the
//! two keyed by an object's address spread it the same way.

/// Fibonacci hashing's multiplier (2^64 over the golden ratio, odd): the
/// top bits of an address's product with it depend on all of its bits.
pub(crate) const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

/// A slot of a table keyed by address.
#[derive(Clone, Copy)]
pub(crate) struct AddressSlot {
    pub(crate) address: usize,
    pub(crate) index: u32,
    /// The table's generation when the slot was filled.
    pub(crate) generation: u32,
}

/// No table's generation is 0, so this slot is empty in every table.
pub(crate) const EMPTY_ADDRESS_SLOT: AddressSlot = AddressSlot {
    address: 0,
    index: 0,
    generation: 0,
};

/// Moves a table to its next generation, which empties it. True once in
/// 2^32 dumps, when the number comes round to 1 again: slots filled in the
/// first generation would then look filled, so the caller wipes them.
#[inline]
pub(crate) fn advance(generation: &mut u32) -> bool {
    *generation = generation.wrapping_add(1);
    if *generation == 0 {
        *generation = 1;
        return true;
    }
    false
}
