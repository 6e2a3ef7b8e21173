//! Decoding pickle opcodes (protocols 0 to 5) from bytes, one at a time, with
//! every length checked: a hostile or truncated pickle is an error, never a panic
//! or an out-of-bounds read.

use std::fmt;

/// An opcode's argument, as far as reading a pickle without running it needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    None,
    Int(i64),
    /// An integer too large for i64 (LONG, LONG1, LONG4), kept as its encoding.
    BigInt,
    Float,
    /// Text: BINUNICODE and friends, or the text lines of protocol 0.
    Text(&'a str),
    /// Bytes that are not text (BINBYTES, BINSTRING, ...): only their length matters.
    Bytes(usize),
    /// GLOBAL and INST: module and name, from two text lines.
    Global(&'a str, &'a str),
}

/// One decoded opcode.
#[derive(Debug, Clone, PartialEq)]
pub struct Op<'a> {
    pub code: u8,
    pub arg: Arg<'a>,
    /// Offset of the opcode byte.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The opcodes the inspector acts on; the rest are only decoded past.
pub mod code {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const REDUCE: u8 = b'R';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const INST: u8 = b'i';
    pub const OBJ: u8 = b'o';
    pub const APPEND: u8 = b'a';
    pub const APPENDS: u8 = b'e';
    pub const LIST: u8 = b'l';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const GET: u8 = b'g';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const PUT: u8 = b'p';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const BINPERSID: u8 = b'Q';
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const EXT1: u8 = 0x82;
    pub const EXT2: u8 = 0x83;
    pub const EXT4: u8 = 0x84;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const ADDITEMS: u8 = 0x90;
    pub const BINBYTES8: u8 = 0x8e;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const NEXT_BUFFER: u8 = 0x97;
    pub const READONLY_BUFFER: u8 = 0x98;
}

/// Decodes the opcode at `offset`; returns it and the offset of the next one.
pub fn decode(pickle: &[u8], offset: usize) -> Result<(Op<'_>, usize), DecodeError> {
    let mut reader = Reader {
        pickle,
        at: offset,
        start: offset,
    };
    let code = reader.byte()?;
    let arg = match code {
        // No argument.
        b'(' | b'.' | b'0' | b'1' | b'2' | b'N' | b'Q' | b'R' | b'a' | b'b' | b'd' | b'}' | b'e' | b'l' | b']'
        | b'o' | b's' | b't' | b')' | b'u' | 0x81 | 0x85 | 0x86 | 0x87 | 0x88 | 0x89 | 0x8f | 0x90 | 0x91 | 0x92
        | 0x93 | 0x94 | 0x97 | 0x98 => Arg::None,
        // Fixed-size integers.
        b'K' => Arg::Int(i64::from(reader.byte()?)),
        b'M' => Arg::Int(i64::from(u16::from_le_bytes(reader.array()?))),
        b'J' => Arg::Int(i64::from(i32::from_le_bytes(reader.array()?))),
        b'h' | b'q' | 0x80 | 0x82 => Arg::Int(i64::from(reader.byte()?)),
        0x83 => Arg::Int(i64::from(u16::from_le_bytes(reader.array()?))),
        b'j' | b'r' | 0x84 => Arg::Int(i64::from(u32::from_le_bytes(reader.array()?))),
        0x95 => {
            reader.array::<8>()?;
            Arg::None
        }
        b'G' => {
            reader.array::<8>()?;
            Arg::Float
        }
        // Length-prefixed data.
        0x8a | 0x8b => {
            reader.counted(if code == 0x8a { 1 } else { 4 })?;
            Arg::BigInt
        }
        b'T' | b'B' => Arg::Bytes(reader.counted(4)?.len()),
        b'U' | b'C' => Arg::Bytes(reader.counted(1)?.len()),
        0x8e | 0x96 => Arg::Bytes(reader.counted(8)?.len()),
        0x8c => Arg::Text(reader.utf8(1)?),
        b'X' => Arg::Text(reader.utf8(4)?),
        0x8d => Arg::Text(reader.utf8(8)?),
        // Protocol 0 text lines.
        b'I' => reader.int_line()?,
        b'L' => {
            reader.line()?;
            Arg::BigInt
        }
        b'F' => {
            reader.line()?;
            Arg::Float
        }
        b'g' | b'p' => reader.int_line()?,
        b'S' => Arg::Bytes(reader.line()?.len()),
        b'V' | b'P' => Arg::Text(reader.line()?),
        b'c' | b'i' => Arg::Global(reader.line()?, reader.line()?),
        other => return Err(reader.error(format!("unknown opcode {other:#04x}"))),
    };
    Ok((Op { code, arg, offset }, reader.at))
}

struct Reader<'a> {
    pickle: &'a [u8],
    at: usize,
    start: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, message: String) -> DecodeError {
        DecodeError {
            offset: self.start,
            message,
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        match self.at.checked_add(len).filter(|&end| end <= self.pickle.len()) {
            Some(end) => {
                let taken = &self.pickle[self.at..end];
                self.at = end;
                Ok(taken)
            }
            None => Err(self.error(format!("truncated: {len} more bytes needed"))),
        }
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Data preceded by its length in `width` little-endian bytes.
    fn counted(&mut self, width: usize) -> Result<&'a [u8], DecodeError> {
        let mut len_bytes = [0u8; 8];
        len_bytes[..width].copy_from_slice(self.take(width)?);
        let len = u64::from_le_bytes(len_bytes);
        // A declared length past the end is truncation, however large it claims to be.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.take(len)
    }

    fn utf8(&mut self, width: usize) -> Result<&'a str, DecodeError> {
        let bytes = self.counted(width)?;
        std::str::from_utf8(bytes).map_err(|_| self.error("text argument is not UTF-8".into()))
    }

    /// A protocol-0 line, without its newline.
    fn line(&mut self) -> Result<&'a str, DecodeError> {
        let rest = &self.pickle[self.at.min(self.pickle.len())..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.error("truncated: unterminated line".into()))?;
        let line = self.take(len)?;
        self.take(1)?;
        std::str::from_utf8(line).map_err(|_| self.error("line argument is not UTF-8".into()))
    }

    fn int_line(&mut self) -> Result<Arg<'a>, DecodeError> {
        let line = self.line()?;
        // Protocol 0 writes True and False as INT lines "01" and "00".
        match line.trim().parse::<i64>() {
            Ok(value) => Ok(Arg::Int(value)),
            Err(_) => Err(self.error(format!("integer line {line:?} is not a number"))),
        }
    }
}
