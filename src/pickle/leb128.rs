//! Unsigned LEB128 numbers (seven bits a byte, low first, the high bit set
//! on every byte but the last): how the native function shape writes a
//! code object's counts, lengths and its names' counts (see
//! `code_body` and the extension's `name_blob`), one byte for a number
//! below 128.

/// Appends `value`.
#[inline]
pub fn push(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Reads a number of at most 32 bits from the front of `rest` and moves
/// past it; None if `rest` ends first or the number is wider.
#[inline]
pub fn read(rest: &mut &[u8]) -> Option<u32> {
    let mut value = 0u64;
    for shift in (0..35).step_by(7) {
        let (&byte, after) = rest.split_first()?;
        *rest = after;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{push, read};

    fn encoded(value: u32) -> Vec<u8> {
        let mut out = Vec::new();
        push(&mut out, value);
        out
    }

    #[test]
    fn numbers_take_a_byte_below_128_and_more_above() {
        assert_eq!(encoded(0), [0]);
        assert_eq!(encoded(127), [127]);
        assert_eq!(encoded(128), [0x80, 1]);
        assert_eq!(encoded(3000), [0xb8, 0x17]);
    }

    #[test]
    fn what_is_written_reads_back_and_moves_past_it() {
        for value in [0, 1, 127, 128, 3000, u32::MAX] {
            let mut bytes = encoded(value);
            bytes.push(9);
            let mut rest = &bytes[..];
            assert_eq!(read(&mut rest), Some(value));
            assert_eq!(rest, [9]);
        }
    }

    #[test]
    fn a_cut_or_wider_number_reads_as_none() {
        assert_eq!(read(&mut &[0x80u8][..]), None);
        assert_eq!(read(&mut &[0xff, 0xff, 0xff, 0xff, 0x7f][..]), None);
        assert_eq!(read(&mut &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..]), None);
    }
}
