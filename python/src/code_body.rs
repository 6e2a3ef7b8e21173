//! How a code object's counts, line number and byte strings travel in the
//! native function shape: one bytes object, the body, where the marked
//! fields had seven (the packed counts, `co_code`, `co_firstlineno`,
//! `co_linetable`, `co_exceptiontable` and two Nones).
//!
//! A bundled code's fields are `(mark, body, co_consts, names blob,
//! co_filename, co_name, co_qualname)`; the body is the six counts
//! (`version::CODE_COUNTS`) and `co_firstlineno`, an unsigned LEB128
//! number each, then `co_code` and `co_linetable`, each as its length
//! (LEB128) and its bytes, then `co_exceptiontable`, the rest.
//!
//! Why: each field costs the unpickler an opcode, a bytes object is also
//! made and later freed, and a load that finds the code object an earlier
//! load made (see `reconstruct::loaded_code`) compares every field. A
//! module of helpers loads a code object per function, so these costs
//! were a fifth of its load. Only the load that makes the code object
//! takes the body apart, into the marked fields it then makes the code
//! from as before.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::leb128;
use crate::version::CODE_COUNTS as COUNTS;

/// Items of a bundled code's fields, and where each is.
pub(crate) const FIELDS: usize = 7;
pub(crate) const BODY: usize = 1;
pub(crate) const CONSTS: usize = 2;
pub(crate) const NAMES: usize = 3;
pub(crate) const FILENAME: usize = 4;
pub(crate) const NAME: usize = 5;
pub(crate) const QUALNAME: usize = 6;

/// The `CodeType(...)` arguments a body holds, other than the counts.
pub(crate) struct Parts<'a> {
    pub(crate) first_line: u32,
    pub(crate) code: &'a [u8],
    pub(crate) line_table: &'a [u8],
    pub(crate) exception_table: &'a [u8],
}

/// The body of these arguments.
pub(crate) fn encode(counts: &[u32; COUNTS], parts: &Parts<'_>) -> Vec<u8> {
    let capacity = 16 + parts.code.len() + parts.line_table.len() + parts.exception_table.len();
    let mut body = Vec::with_capacity(capacity);
    for &count in counts {
        leb128::push(&mut body, count);
    }
    leb128::push(&mut body, parts.first_line);
    for bytes in [parts.code, parts.line_table] {
        // Never wider: a code object's bytes are far below 4 GiB.
        leb128::push(&mut body, bytes.len() as u32);
        body.extend_from_slice(bytes);
    }
    body.extend_from_slice(parts.exception_table);
    body
}

/// A body taken apart.
pub(crate) struct Body<'a> {
    pub(crate) counts: [u32; COUNTS],
    /// The counts as they were written: the marked fields' packed counts.
    pub(crate) packed_counts: &'a [u8],
    pub(crate) parts: Parts<'a>,
}

/// Takes `body` apart; a ValueError if it is malformed.
pub(crate) fn decode(body: &[u8]) -> PyResult<Body<'_>> {
    let mut rest = body;
    let mut counts = [0u32; COUNTS];
    for count in &mut counts {
        *count = leb128::read(&mut rest).ok_or_else(|| malformed("a count is cut short or too wide"))?;
    }
    let packed_counts = &body[..body.len() - rest.len()];
    let first_line = leb128::read(&mut rest).ok_or_else(|| malformed("its first line is cut short or too wide"))?;
    let code = sized(&mut rest)?;
    let line_table = sized(&mut rest)?;
    Ok(Body {
        counts,
        packed_counts,
        parts: Parts {
            first_line,
            code,
            line_table,
            exception_table: rest,
        },
    })
}

/// The bytes behind a length at the front of `rest`, moving past both.
fn sized<'a>(rest: &mut &'a [u8]) -> PyResult<&'a [u8]> {
    let length = leb128::read(rest).ok_or_else(|| malformed("a length is cut short or too wide"))? as usize;
    if length > rest.len() {
        return Err(malformed("a length runs past its end"));
    }
    let (bytes, after) = rest.split_at(length);
    *rest = after;
    Ok(bytes)
}

/// Whether `fields` (behind a mark) are bundled: seven items, a bytes
/// object second. The marked fields have thirteen or more.
pub(crate) fn is_bundled(fields: &Bound<'_, PyTuple>) -> bool {
    fields.len() == FIELDS
        && fields
            .get_borrowed_item(BODY)
            .is_ok_and(|body| body.is_exact_instance_of::<PyBytes>())
}

#[cold]
fn malformed(what: &str) -> PyErr {
    PyValueError::new_err(format!("a code object's body is malformed: {what}"))
}

#[cfg(test)]
mod tests {
    use super::{Parts, decode, encode};

    fn round_trip(counts: [u32; 6], parts: &Parts<'_>) {
        let body = encode(&counts, parts);
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded.counts, counts);
        assert_eq!(decoded.parts.first_line, parts.first_line);
        assert_eq!(decoded.parts.code, parts.code);
        assert_eq!(decoded.parts.line_table, parts.line_table);
        assert_eq!(decoded.parts.exception_table, parts.exception_table);
        let mut packed = Vec::new();
        for count in counts {
            crate::leb128::push(&mut packed, count);
        }
        assert_eq!(decoded.packed_counts, packed);
    }

    #[test]
    fn bodies_round_trip() {
        let long_code = vec![0x97u8; 300];
        round_trip(
            [1, 0, 0, 1, 3, 3],
            &Parts {
                first_line: 12,
                code: b"\x97\x00|\x00S\x00",
                line_table: b"\x80\x00",
                exception_table: b"",
            },
        );
        round_trip(
            [u32::MAX, 0, 2, 200, 70_000, 0x0400_0003],
            &Parts {
                first_line: 0,
                code: &long_code,
                line_table: b"",
                exception_table: b"\x82\x05\x07",
            },
        );
    }

    #[test]
    fn malformed_bodies_are_refused() {
        let body = encode(
            &[1, 0, 0, 1, 3, 3],
            &Parts {
                first_line: 12,
                code: b"\x97\x00|\x00S\x00",
                line_table: b"\x80\x00",
                exception_table: b"",
            },
        );
        // Cut anywhere before the exception table, the body is refused.
        for end in 0..body.len() {
            assert!(decode(&body[..end]).is_err(), "cut at {end}");
        }
        let mut past_its_end = body.clone();
        past_its_end[7] = 0x7f;
        assert!(decode(&past_its_end).is_err());
    }
}
