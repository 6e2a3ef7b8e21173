//! Recognising a sealed payload carried inside an ordinary pickle.
//!
//! `flightpickle.sealing.embed` (and the Spark driver hook) write a pickle whose
//! whole content is one call: `flightpickle.sealing.load_sealed(frame)` or
//! `load_sealed(frame, cache)`. A reader that wants to check the frame before
//! anything runs (the JVM's command policy) needs the frame itself, so this
//! module matches exactly that shape, opcode by opcode, and returns the frame's
//! bytes. Any other pickle, however close, is not a sealed call: a policy must
//! never treat a pickle that does more than open a frame as if it were one.
//! A command too large for Spark's tasks travels in a broadcast, pickled once
//! more as a plain `bytes` object; `pickled_bytes` unwraps that layer.

use super::opcodes::code::*;
use super::opcodes::{Arg, DecodeError, decode};

/// The reconstructor that opens an embedded sealed payload.
pub const LOAD_SEALED_MODULE: &str = "flightpickle.sealing";
pub const LOAD_SEALED_NAME: &str = "load_sealed";

const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;

/// What the matcher keeps of an opcode: the ones that only frame or memoize are dropped.
enum Token<'a> {
    Text(&'a str),
    Global(&'a str, &'a str),
    Bytes(&'a [u8]),
    Op(u8),
}

/// The frame that `pickle` passes to `load_sealed`, when the pickle is nothing but
/// that call; `None` for any other pickle. Errors only for bytes that do not decode.
pub fn sealed_frame(pickle: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    let tokens = tokens(pickle)?;
    Ok(match tokens.as_slice() {
        [callee @ .., Token::Bytes(frame), Token::Op(TUPLE1), Token::Op(REDUCE)] if names_load_sealed(callee) => {
            Some(frame)
        }
        [
            callee @ ..,
            Token::Bytes(frame),
            Token::Op(NEWTRUE | NEWFALSE),
            Token::Op(TUPLE2),
            Token::Op(REDUCE),
        ] if names_load_sealed(callee) => Some(frame),
        _ => None,
    })
}

/// The bytes of a pickle that holds nothing but one `bytes` object; `None` for
/// any other pickle. PySpark writes a command over its broadcast threshold to
/// the broadcast's file in this shape (`pickle.dump(command_bytes, file)`).
pub fn pickled_bytes(pickle: &[u8]) -> Result<Option<&[u8]>, DecodeError> {
    let tokens = tokens(pickle)?;
    Ok(match tokens.as_slice() {
        [Token::Bytes(data)] => Some(data),
        _ => None,
    })
}

fn names_load_sealed(callee: &[Token<'_>]) -> bool {
    match callee {
        [Token::Global(module, name)] => *module == LOAD_SEALED_MODULE && *name == LOAD_SEALED_NAME,
        [Token::Text(module), Token::Text(name), Token::Op(STACK_GLOBAL)] => {
            *module == LOAD_SEALED_MODULE && *name == LOAD_SEALED_NAME
        }
        _ => false,
    }
}

/// The pickle's opcodes up to STOP, as tokens. Stops early (with a token that
/// matches nothing) at the first opcode a sealed call never contains, so a long
/// pickle of another kind is not decoded to its end for nothing.
fn tokens(pickle: &[u8]) -> Result<Vec<Token<'_>>, DecodeError> {
    let mut tokens = Vec::new();
    let mut offset = 0;
    loop {
        let (op, next) = decode(pickle, offset)?;
        match (op.code, op.arg) {
            (STOP, _) => return Ok(tokens),
            (PROTO | FRAME | MEMOIZE | PUT | BINPUT | LONG_BINPUT, _) => {}
            (GLOBAL, Arg::Global(module, name)) => tokens.push(Token::Global(module, name)),
            (_, Arg::Text(text)) => tokens.push(Token::Text(text)),
            (SHORT_BINBYTES | BINBYTES | BINBYTES8, Arg::Bytes(len)) => {
                // The data is the last `len` bytes of the opcode.
                tokens.push(Token::Bytes(&pickle[next - len..next]));
            }
            (code @ (STACK_GLOBAL | TUPLE1 | TUPLE2 | REDUCE | NEWTRUE | NEWFALSE), _) => tokens.push(Token::Op(code)),
            (code, _) => {
                tokens.push(Token::Op(code));
                return Ok(tokens);
            }
        }
        // The longest sealed call has 7 tokens; an 8th means this is something else.
        if tokens.len() > 7 {
            return Ok(tokens);
        }
        offset = next;
    }
}
