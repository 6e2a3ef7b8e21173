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
#[inline]
pub(crate) fn hash_text(text: &[u8]) -> u64 {
    let mut hasher = QuickHasher::default();
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hasher.add(u64::from_le_bytes(word));
    }
    hasher.add(tail_word(text) ^ (text.len() as u64).rotate_right(8));
    hasher.0
}

/// The bytes after `text`'s last whole word, as a little-endian word padded
/// with zeros. Read with fixed-size loads: copying a tail of any length
/// into a zeroed word called `memcpy` (~20 instructions a name).
fn tail_word(text: &[u8]) -> u64 {
    let len = text.len();
    let tail = len % 8;
    if tail == 0 {
        return 0;
    }
    if len >= 8 {
        // The last eight bytes, of which the tail is the top `tail`.
        return read_u64(&text[len - 8..]) >> (8 * (8 - tail));
    }
    if len >= 4 {
        // Two four-byte reads, overlapping by the same bytes.
        return u64::from(read_u32(text)) | (u64::from(read_u32(&text[len - 4..])) << (8 * (len - 4)));
    }
    // One to three bytes: the first, the middle and the last cover them.
    let byte = |at: usize| u64::from(text[at]) << (8 * at);
    byte(0) | byte(len / 2) | byte(len - 1)
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

fn read_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
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
    fn the_tail_word_is_the_tail_padded_with_zeros() {
        let text: Vec<u8> = (1..=27).map(|i| i * 9).collect();
        for len in 0..=text.len() {
            let text = &text[..len];
            let tail = &text[len - len % 8..];
            let mut padded = [0u8; 8];
            padded[..tail.len()].copy_from_slice(tail);
            assert_eq!(tail_word(text), u64::from_le_bytes(padded), "length {len}");
        }
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
