//! Sealed payloads: a pickle in a versioned frame with a digest, and optionally a
//! signature and compression, checked before anything is unpickled.
//!
//! The byte layout is documented in `FORMAT.md` beside this file. `seal` writes a
//! frame; `open` verifies one and hands back the pickle bytes; `parse` reads a
//! header only (for inspection and for caches keyed by digest).

mod error;
mod layout;

use std::borrow::Cow;
use std::collections::HashMap;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

pub use error::EnvelopeError;
pub use layout::{
    DIGEST_LEN, FORMAT_VERSION, Header, MAGIC, MAX_KEY_ID_LEN, PythonImplementation, PythonVersion, WireTarget,
};

type HmacSha256 = Hmac<Sha256>;

/// Payloads at least this long are compressed unless the caller says otherwise:
/// below it, zstd's frame overhead and the time spent are not worth it.
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = 64 * 1024;
pub const DEFAULT_COMPRESSION_LEVEL: i32 = 3;
/// The largest payload `open` accepts unless told otherwise.
pub const DEFAULT_MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// A signing key and the id a frame names it by.
#[derive(Clone)]
pub struct SigningKey<'a> {
    pub id: &'a str,
    pub secret: &'a [u8],
}

/// How to seal a pickle.
pub struct SealOptions<'a> {
    pub python: PythonVersion,
    pub target: WireTarget,
    pub protocol: u8,
    pub writer_version: &'a str,
    /// Compress payloads of at least this many bytes; `None` never compresses.
    pub compression_threshold: Option<usize>,
    pub compression_level: i32,
    pub key: Option<SigningKey<'a>>,
}

/// Wraps `pickle` in a frame.
pub fn seal(pickle: &[u8], options: &SealOptions<'_>) -> Result<Vec<u8>, EnvelopeError> {
    check_seal_options(options)?;
    let compress = options
        .compression_threshold
        .is_some_and(|threshold| pickle.len() >= threshold);
    let body: Cow<'_, [u8]> = if compress {
        let compressed = zstd::bulk::compress(pickle, options.compression_level)
            .map_err(|e| EnvelopeError::InvalidSealRequest(format!("zstd compression failed: {e}")))?;
        Cow::Owned(compressed)
    } else {
        Cow::Borrowed(pickle)
    };
    let header = Header {
        compressed: compress,
        python: options.python,
        target: options.target,
        protocol: options.protocol,
        writer_version: options.writer_version.to_owned(),
        payload_len: pickle.len() as u64,
        body_len: body.len() as u64,
        digest: Sha256::digest(pickle).into(),
        signature: None,
    };
    let mut frame = header.signed_part(options.key.as_ref().map(|key| key.id));
    if let Some(key) = &options.key {
        let signature = sign(key.secret, &frame);
        frame.extend_from_slice(&signature);
    }
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn check_seal_options(options: &SealOptions<'_>) -> Result<(), EnvelopeError> {
    if options.writer_version.len() > layout::MAX_WRITER_VERSION_LEN || !options.writer_version.is_ascii() {
        return Err(EnvelopeError::InvalidSealRequest(format!(
            "writer version {:?} must be ASCII and at most {} bytes",
            options.writer_version,
            layout::MAX_WRITER_VERSION_LEN
        )));
    }
    if let Some(key) = &options.key {
        if key.id.is_empty() || key.id.len() > MAX_KEY_ID_LEN {
            return Err(EnvelopeError::InvalidSealRequest(format!(
                "key id {:?} must be 1 to {MAX_KEY_ID_LEN} bytes long",
                key.id
            )));
        }
        if key.secret.is_empty() {
            return Err(EnvelopeError::InvalidSealRequest(format!("key {:?} is empty", key.id)));
        }
    }
    Ok(())
}

/// How to open a frame.
pub struct OpenOptions<'a> {
    /// Keys by id. A signed frame is verified when its key is here; a signed frame whose
    /// key is missing is refused whenever any key is given or a signature is required.
    pub keys: HashMap<&'a str, &'a [u8]>,
    pub require_signature: bool,
    /// Refuse frames written by another Python than this one.
    pub expected_python: Option<PythonVersion>,
    pub max_payload_len: u64,
}

impl Default for OpenOptions<'_> {
    fn default() -> Self {
        Self {
            keys: HashMap::new(),
            require_signature: false,
            expected_python: None,
            max_payload_len: DEFAULT_MAX_PAYLOAD_LEN,
        }
    }
}

/// A verified frame: its header and the pickle, borrowed when it was stored uncompressed.
#[derive(Debug)]
pub struct Opened<'f> {
    pub header: Header,
    pub pickle: Cow<'f, [u8]>,
}

/// Reads a frame's header without verifying its signature or digest.
pub fn parse(frame: &[u8]) -> Result<Header, EnvelopeError> {
    Ok(layout::parse(frame)?.header)
}

/// Verifies a frame in the order FORMAT.md gives and returns its pickle.
pub fn open<'f>(frame: &'f [u8], options: &OpenOptions<'_>) -> Result<Opened<'f>, EnvelopeError> {
    let parsed = layout::parse(frame)?;
    let header = parsed.header;
    if header.payload_len > options.max_payload_len {
        return Err(EnvelopeError::TooLarge {
            declared: header.payload_len,
            limit: options.max_payload_len,
        });
    }
    verify_signature(&header, &frame[..parsed.signed_len], options)?;
    if let Some(reader) = options.expected_python
        && header.python != reader
    {
        return Err(EnvelopeError::PythonMismatch {
            payload: header.python,
            reader,
        });
    }
    let body = &frame[parsed.body_start..];
    let pickle = if header.compressed {
        Cow::Owned(decompress(body, header.payload_len)?)
    } else if body.len() as u64 != header.payload_len {
        return Err(EnvelopeError::Malformed(format!(
            "uncompressed body of {} bytes but a payload of {} declared",
            body.len(),
            header.payload_len
        )));
    } else {
        Cow::Borrowed(body)
    };
    if Sha256::digest(&pickle)[..] != header.digest[..] {
        return Err(EnvelopeError::DigestMismatch);
    }
    Ok(Opened { header, pickle })
}

fn verify_signature(header: &Header, signed_part: &[u8], options: &OpenOptions<'_>) -> Result<(), EnvelopeError> {
    let Some((key_id, signature)) = &header.signature else {
        return if options.require_signature {
            Err(EnvelopeError::SignatureMissing)
        } else {
            Ok(())
        };
    };
    if key_id.is_empty() {
        return Err(EnvelopeError::Malformed("signed frame with an empty key id".into()));
    }
    match options.keys.get(key_id.as_str()) {
        Some(secret) => {
            let mut mac = new_mac(secret);
            mac.update(signed_part);
            // Constant-time comparison: a timing side channel must not reveal the signature.
            mac.verify_slice(signature)
                .map_err(|_| EnvelopeError::BadSignature { key_id: key_id.clone() })
        }
        None if options.require_signature || !options.keys.is_empty() => Err(EnvelopeError::UnknownKey(key_id.clone())),
        None => Ok(()),
    }
}

fn sign(secret: &[u8], signed_part: &[u8]) -> [u8; layout::SIGNATURE_LEN] {
    let mut mac = new_mac(secret);
    mac.update(signed_part);
    mac.finalize().into_bytes().into()
}

fn new_mac(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Decompresses into a buffer of exactly the declared size, so a body that would
/// expand further fails instead of growing memory.
fn decompress(body: &[u8], payload_len: u64) -> Result<Vec<u8>, EnvelopeError> {
    let capacity = usize::try_from(payload_len)
        .map_err(|_| EnvelopeError::Malformed(format!("payload length {payload_len} does not fit in memory")))?;
    let pickle = zstd::bulk::decompress(body, capacity).map_err(|e| EnvelopeError::Decompression(e.to_string()))?;
    if pickle.len() != capacity {
        return Err(EnvelopeError::Decompression(format!(
            "{} bytes after decompression, {capacity} declared",
            pickle.len()
        )));
    }
    Ok(pickle)
}

#[cfg(test)]
mod tests;
