//! A fast, non-cryptographic hash for the native maps keyed by object
//! addresses or by short names: the keys are addresses and names that our
//! own code produces, never keys chosen by an adversary to collide.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub(crate) struct QuickHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl QuickHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for QuickHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.add(u64::from(byte));
        }
    }

    /// A key that is already a hash (`hash_text`'s) is mixed once.
    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        // Objects are 16-byte aligned: the low bits carry no information.
        self.add((value >> 4) as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type QuickMap<K, V> = HashMap<K, V, BuildHasherDefault<QuickHasher>>;

/// A hash of `bytes`, for tests of the tables keyed by a text's hash (the
/// writer hashes names as `str` does, see `writer/dumper/scalars.rs`).
#[cfg(test)]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut hasher = QuickHasher::default();
    hasher.write(bytes);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_separates_texts_that_share_a_prefix() {
        let hash = |text: &[u8]| {
            let mut hasher = QuickHasher::default();
            hasher.write(text);
            hasher.finish()
        };
        assert_ne!(hash(b"flightpickle._reconstruct"), hash(b"flightpickle._reconstructs"));
        assert_ne!(hash(b"a"), hash(b"b"));
    }
}
