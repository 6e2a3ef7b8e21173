//! The body of a code object in the native function shape: one bytes
//! object that holds what a load that finds the code made before only
//! compares, so that such a load unpickles one object for it.
//!
//! The six counts of `CodeType(...)` (`co_argcount`, `co_posonlyargcount`,
//! `co_kwonlyargcount`, `co_nlocals`, `co_stacksize`, `co_flags`) and
//! `co_firstlineno`, an unsigned LEB128 number each; then `co_code`,
//! `co_linetable`, `co_name` and `co_qualname` (UTF-8), each as its length
//! (LEB128) and its bytes; then `co_exceptiontable`, the rest.
//!
//! The extension writes and loads bodies (its `code_body` module); the
//! inspector reads a function's qualname from one.

use super::leb128;

/// The counts that lead a body.
pub const COUNTS: usize = 6;

/// A body's parts, borrowed from it (or, to encode, from the code object).
#[derive(Debug, PartialEq, Eq)]
pub struct CodeBody<'a> {
    pub counts: [u32; COUNTS],
    pub first_line: u32,
    pub code: &'a [u8],
    pub line_table: &'a [u8],
    pub name: &'a [u8],
    pub qualname: &'a [u8],
    pub exception_table: &'a [u8],
}

impl<'a> CodeBody<'a> {
    /// The body of these parts.
    #[inline]
    pub fn encode(&self) -> Vec<u8> {
        let sized = [self.code, self.line_table, self.name, self.qualname];
        let capacity = 32 + sized.iter().map(|bytes| bytes.len()).sum::<usize>() + self.exception_table.len();
        let mut body = Vec::with_capacity(capacity);
        for &count in &self.counts {
            leb128::push(&mut body, count);
        }
        leb128::push(&mut body, self.first_line);
        for bytes in sized {
            // Never wider: a code object's parts are far below 4 GiB.
            leb128::push(&mut body, bytes.len() as u32);
            body.extend_from_slice(bytes);
        }
        body.extend_from_slice(self.exception_table);
        body
    }

    /// Takes `body` apart; what is malformed, if it is.
    #[inline]
    pub fn decode(body: &'a [u8]) -> Result<Self, &'static str> {
        let mut rest = body;
        let mut counts = [0u32; COUNTS];
        for count in &mut counts {
            *count = leb128::read(&mut rest).ok_or("a count is cut short or too wide")?;
        }
        let first_line = leb128::read(&mut rest).ok_or("its first line is cut short or too wide")?;
        let code = sized(&mut rest)?;
        let line_table = sized(&mut rest)?;
        let name = sized(&mut rest)?;
        let qualname = sized(&mut rest)?;
        Ok(Self {
            counts,
            first_line,
            code,
            line_table,
            name,
            qualname,
            exception_table: rest,
        })
    }
}

/// The bytes behind a length at the front of `rest`, moving past both.
fn sized<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], &'static str> {
    let length = leb128::read(rest).ok_or("a length is cut short or too wide")? as usize;
    if length > rest.len() {
        return Err("a length runs past its end");
    }
    let (bytes, after) = rest.split_at(length);
    *rest = after;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::CodeBody;

    fn small() -> CodeBody<'static> {
        CodeBody {
            counts: [1, 0, 0, 1, 3, 3],
            first_line: 12,
            code: b"\x97\x00|\x00S\x00",
            line_table: b"\x80\x00",
            name: b"<lambda>",
            qualname: b"outer.<locals>.<lambda>",
            exception_table: b"",
        }
    }

    #[test]
    fn bodies_round_trip() {
        let long_code = vec![0x97u8; 300];
        let wide = CodeBody {
            counts: [u32::MAX, 0, 2, 200, 70_000, 0x0400_0003],
            first_line: 0,
            code: &long_code,
            line_table: b"",
            name: "größe".as_bytes(),
            qualname: b"",
            exception_table: b"\x82\x05\x07",
        };
        for body in [small(), wide] {
            let encoded = body.encode();
            assert_eq!(CodeBody::decode(&encoded), Ok(body));
        }
    }

    #[test]
    fn a_body_cut_anywhere_before_its_exception_table_is_refused() {
        let encoded = small().encode();
        for end in 0..encoded.len() {
            assert!(CodeBody::decode(&encoded[..end]).is_err(), "cut at {end}");
        }
        let mut past_its_end = encoded.clone();
        past_its_end[7] = 0x7f;
        assert_eq!(CodeBody::decode(&past_its_end), Err("a length runs past its end"));
    }
}
