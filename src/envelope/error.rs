//! Why a frame was refused. Each refusal is its own variant, so the fronts can map
//! them to their own exception classes; each message says what to do about it.

use std::fmt;

use super::layout::{FORMAT_VERSION, PythonVersion};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The bytes do not start with the magic: not a sealed payload at all.
    NotSealed,
    /// The frame ends before a field it declares.
    Truncated { needed: usize, available: usize },
    /// Bytes follow the body the header declares.
    TrailingBytes { extra: usize },
    /// Written by a format version this reader does not know.
    UnknownFormatVersion(u8),
    /// A field holds a value no writer of this format version produces.
    Malformed(String),
    /// The declared payload is larger than the reader accepts.
    TooLarge { declared: u64, limit: u64 },
    /// The reader requires a signature and the frame has none.
    SignatureMissing,
    /// The frame is signed with a key id the reader has no key for.
    UnknownKey(String),
    /// The signature does not match: tampered with, or signed with another key.
    BadSignature { key_id: String },
    /// Written by another Python than the one that would unpickle it.
    PythonMismatch {
        payload: PythonVersion,
        reader: PythonVersion,
    },
    /// The compressed body does not decompress to the declared payload.
    Decompression(String),
    /// The payload does not match its digest: corrupted.
    DigestMismatch,
    /// A seal request that cannot be honoured (e.g. an empty key).
    InvalidSealRequest(String),
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSealed => write!(
                f,
                "not a sealed flightpickle payload (wrong magic bytes); \
                 load plain pickles with pickle.loads, and only from trusted sources"
            ),
            Self::Truncated { needed, available } => write!(
                f,
                "sealed payload is truncated: {needed} bytes needed, {available} present; \
                 the payload was cut short in transfer or storage"
            ),
            Self::TrailingBytes { extra } => write!(
                f,
                "sealed payload has {extra} unexpected bytes after its body; \
                 it was concatenated with other data or corrupted"
            ),
            Self::UnknownFormatVersion(version) => write!(
                f,
                "sealed payload has format version {version}, this flightpickle reads version \
                 {FORMAT_VERSION}; open it with the flightpickle version that sealed it, or upgrade"
            ),
            Self::Malformed(what) => write!(f, "sealed payload is malformed: {what}"),
            Self::TooLarge { declared, limit } => write!(
                f,
                "sealed payload declares {declared} bytes, over the limit of {limit}; \
                 raise the limit if the payload is trusted"
            ),
            Self::SignatureMissing => write!(
                f,
                "sealed payload is not signed but a signature is required; \
                 seal it with a key, or open it without requiring one"
            ),
            Self::UnknownKey(key_id) => write!(
                f,
                "sealed payload is signed with key {key_id:?}, which this reader does not have; \
                 pass that key when opening"
            ),
            Self::BadSignature { key_id } => write!(
                f,
                "sealed payload's signature does not match key {key_id:?}: \
                 it was modified after sealing, or sealed with a different key of that id"
            ),
            Self::PythonMismatch { payload, reader } => write!(
                f,
                "pickled on {payload}, this is {reader}: pickled code only loads in the Python \
                 minor version that wrote it; run the same Python version on both sides"
            ),
            Self::Decompression(reason) => write!(f, "sealed payload does not decompress: {reason}"),
            Self::DigestMismatch => write!(
                f,
                "sealed payload does not match its digest: it was corrupted in transfer or storage"
            ),
            Self::InvalidSealRequest(reason) => write!(f, "cannot seal: {reason}"),
        }
    }
}

impl EnvelopeError {
    /// A stable name for the kind of refusal, for the fronts' exception classes.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotSealed => "not_sealed",
            Self::Truncated { .. } => "truncated",
            Self::TrailingBytes { .. } | Self::Malformed(_) => "malformed",
            Self::UnknownFormatVersion(_) => "unknown_format_version",
            Self::TooLarge { .. } => "too_large",
            Self::SignatureMissing => "signature_missing",
            Self::UnknownKey(_) => "unknown_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::PythonMismatch { .. } => "python_mismatch",
            Self::Decompression(_) => "decompression",
            Self::DigestMismatch => "digest_mismatch",
            Self::InvalidSealRequest(_) => "invalid_request",
        }
    }
}

impl std::error::Error for EnvelopeError {}
