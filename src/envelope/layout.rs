//! The byte layout of a frame's header (see FORMAT.md beside this file): the one
//! place that knows offsets and sizes.

use std::fmt;

use super::error::EnvelopeError;

pub const MAGIC: [u8; 4] = *b"\x89FPK";
pub const FORMAT_VERSION: u8 = 1;
pub const DIGEST_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 32;
pub const MAX_WRITER_VERSION_LEN: usize = 32;
pub const MAX_KEY_ID_LEN: usize = 64;

const FLAG_COMPRESSED: u8 = 0b01;
const FLAG_SIGNED: u8 = 0b10;
const KNOWN_FLAGS: u8 = FLAG_COMPRESSED | FLAG_SIGNED;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PythonImplementation {
    CPython,
    PyPy,
    Other,
}

impl PythonImplementation {
    fn code(self) -> u8 {
        match self {
            Self::CPython => 0,
            Self::PyPy => 1,
            Self::Other => 255,
        }
    }

    fn from_code(code: u8) -> Result<Self, EnvelopeError> {
        match code {
            0 => Ok(Self::CPython),
            1 => Ok(Self::PyPy),
            255 => Ok(Self::Other),
            _ => Err(EnvelopeError::Malformed(format!(
                "unknown Python implementation code {code}"
            ))),
        }
    }

    /// From `sys.implementation.name`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "cpython" => Self::CPython,
            "pypy" => Self::PyPy,
            _ => Self::Other,
        }
    }
}

/// The Python a pickle was written by or is about to be loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PythonVersion {
    pub implementation: PythonImplementation,
    pub major: u8,
    pub minor: u8,
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.implementation {
            PythonImplementation::CPython => "CPython",
            PythonImplementation::PyPy => "PyPy",
            PythonImplementation::Other => "another Python implementation",
        };
        write!(f, "{name} {}.{}", self.major, self.minor)
    }
}

/// Whose reconstructors the pickle names, so whose package the loading side needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireTarget {
    Native,
    Cloudpickle,
    Pyspark,
}

impl WireTarget {
    fn code(self) -> u8 {
        match self {
            Self::Native => 0,
            Self::Cloudpickle => 1,
            Self::Pyspark => 2,
        }
    }

    fn from_code(code: u8) -> Result<Self, EnvelopeError> {
        match code {
            0 => Ok(Self::Native),
            1 => Ok(Self::Cloudpickle),
            2 => Ok(Self::Pyspark),
            _ => Err(EnvelopeError::Malformed(format!("unknown wire target code {code}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Cloudpickle => "cloudpickle",
            Self::Pyspark => "pyspark",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Native, Self::Cloudpickle, Self::Pyspark]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// Everything a frame says about its payload, as read from (or written to) its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub compressed: bool,
    pub python: PythonVersion,
    pub target: WireTarget,
    pub protocol: u8,
    pub writer_version: String,
    pub payload_len: u64,
    pub body_len: u64,
    pub digest: [u8; DIGEST_LEN],
    /// The key id and signature of a signed frame.
    pub signature: Option<(String, [u8; SIGNATURE_LEN])>,
}

impl Header {
    /// The header bytes up to, not including, the signature: what the signature covers.
    /// `key_id` is included for a signed frame, so the key id cannot be swapped.
    pub fn signed_part(&self, key_id: Option<&str>) -> Vec<u8> {
        let key_id_bytes = key_id.map_or(0, |k| 1 + k.len());
        let signature_len = if key_id.is_some() { SIGNATURE_LEN } else { 0 };
        let header_len = 14 + self.writer_version.len() + 8 + 8 + DIGEST_LEN + key_id_bytes + signature_len;
        let mut out = Vec::with_capacity(header_len);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(self.flags(key_id.is_some()));
        // A header never comes near 64 KiB: its variable fields are capped.
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
        out.push(self.python.implementation.code());
        out.push(self.python.major);
        out.push(self.python.minor);
        out.push(self.target.code());
        out.push(self.protocol);
        out.push(self.writer_version.len() as u8);
        out.extend_from_slice(self.writer_version.as_bytes());
        out.extend_from_slice(&self.payload_len.to_le_bytes());
        out.extend_from_slice(&self.body_len.to_le_bytes());
        out.extend_from_slice(&self.digest);
        if let Some(key_id) = key_id {
            out.push(key_id.len() as u8);
            out.extend_from_slice(key_id.as_bytes());
        }
        out
    }

    fn flags(&self, signed: bool) -> u8 {
        let mut flags = 0;
        if self.compressed {
            flags |= FLAG_COMPRESSED;
        }
        if signed {
            flags |= FLAG_SIGNED;
        }
        flags
    }
}

/// A parsed header and where in the frame its parts are.
pub struct ParsedHeader {
    pub header: Header,
    /// Length of the bytes the signature covers (the header before the signature).
    pub signed_len: usize,
    /// Offset of the body.
    pub body_start: usize,
}

/// Reads a header, checking the frame's shape but not its signature or digest.
pub fn parse(frame: &[u8]) -> Result<ParsedHeader, EnvelopeError> {
    let mut cursor = Cursor { bytes: frame, at: 0 };
    if cursor.take(MAGIC.len()).map_or(true, |m| m != MAGIC) {
        // Fewer bytes than the magic, but a prefix of it, is a truncated frame.
        return Err(if frame.len() < MAGIC.len() && MAGIC.starts_with(frame) {
            EnvelopeError::Truncated {
                needed: MAGIC.len(),
                available: frame.len(),
            }
        } else {
            EnvelopeError::NotSealed
        });
    }
    let version = cursor.u8()?;
    if version != FORMAT_VERSION {
        return Err(EnvelopeError::UnknownFormatVersion(version));
    }
    let flags = cursor.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(EnvelopeError::Malformed(format!("unknown flags {flags:#04x}")));
    }
    let header_len = usize::from(cursor.u16()?);
    let python = PythonVersion {
        implementation: PythonImplementation::from_code(cursor.u8()?)?,
        major: cursor.u8()?,
        minor: cursor.u8()?,
    };
    let target = WireTarget::from_code(cursor.u8()?)?;
    let protocol = cursor.u8()?;
    let writer_version = cursor.short_string(MAX_WRITER_VERSION_LEN, "writer version")?;
    let payload_len = cursor.u64()?;
    let body_len = cursor.u64()?;
    let digest: [u8; DIGEST_LEN] = cursor.array()?;
    let signed = flags & FLAG_SIGNED != 0;
    let key_id = if signed {
        Some(cursor.short_string(MAX_KEY_ID_LEN, "key id")?)
    } else {
        None
    };
    let signed_len = cursor.at;
    let signature = match key_id {
        Some(key_id) => Some((key_id, cursor.array()?)),
        None => None,
    };
    if header_len != cursor.at {
        return Err(EnvelopeError::Malformed(format!(
            "header length field says {header_len}, the fields take {}",
            cursor.at
        )));
    }
    check_body_length(frame.len(), header_len, body_len)?;
    let header = Header {
        compressed: flags & FLAG_COMPRESSED != 0,
        python,
        target,
        protocol,
        writer_version,
        payload_len,
        body_len,
        digest,
        signature,
    };
    Ok(ParsedHeader {
        header,
        signed_len,
        body_start: header_len,
    })
}

fn check_body_length(frame_len: usize, header_len: usize, body_len: u64) -> Result<(), EnvelopeError> {
    let available = (frame_len - header_len) as u64;
    if body_len > available {
        // The declared length is untrusted: it may be near u64::MAX.
        let needed = usize::try_from((header_len as u64).saturating_add(body_len)).unwrap_or(usize::MAX);
        return Err(EnvelopeError::Truncated {
            needed,
            available: frame_len,
        });
    }
    if body_len < available {
        return Err(EnvelopeError::TrailingBytes {
            extra: (available - body_len) as usize,
        });
    }
    Ok(())
}

/// Bounds-checked reads: running off the end is a `Truncated` error, never a panic.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], EnvelopeError> {
        let end = self.at.checked_add(len).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(EnvelopeError::Truncated {
            needed: self.at + len,
            available: self.bytes.len(),
        })?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, EnvelopeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn short_string(&mut self, max: usize, what: &str) -> Result<String, EnvelopeError> {
        let len = usize::from(self.u8()?);
        if len > max {
            return Err(EnvelopeError::Malformed(format!(
                "{what} is {len} bytes long, at most {max} allowed"
            )));
        }
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| EnvelopeError::Malformed(format!("{what} is not UTF-8")))
    }
}
