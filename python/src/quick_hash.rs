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

/// The hash of a short text, a word at a time: the tail is read as one
/// zero-padded word and the length mixed in with it, where `Hasher::write`
/// takes the tail a byte at a time (names are mostly under 16 bytes, so
/// the tail was most of the work).
pub(crate) fn hash_text(text: &[u8]) -> u64 {
    let mut hasher = QuickHasher::default();
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hasher.add(u64::from_le_bytes(word));
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    hasher.add(u64::from_le_bytes(tail) ^ (text.len() as u64).rotate_right(8));
    hasher.0
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

    #[test]
    fn text_hashes_tell_trailing_zero_bytes_and_lengths_apart() {
        assert_ne!(hash_text(b"a"), hash_text(b"a\0"));
        assert_ne!(hash_text(b""), hash_text(b"\0"));
        assert_ne!(hash_text(b"__name__"), hash_text(b"__name__\0"));
        assert_ne!(hash_text(b"co_names"), hash_text(b"co_namez"));
        assert_eq!(hash_text(b"__qualname__"), hash_text(b"__qualname__"));
    }
}
