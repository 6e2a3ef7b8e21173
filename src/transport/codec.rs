//! Frames and messages of the executor protocol (`PROTOCOL.md`), as bytes.
//!
//! Nothing here touches a socket: encoding produces byte vectors, decoding
//! reads from byte slices, so every rule of the format is unit-tested without
//! a network, and the Unix-socket and any later transport share one codec.

use std::fmt;

/// First bytes of every frame.
pub const FRAME_MAGIC: [u8; 4] = *b"FPX1";
/// Version of the protocol carried in `Open`; a service refuses others.
pub const PROTOCOL_VERSION: u16 = 1;
/// Bytes of the fixed frame header.
pub const HEADER_LEN: usize = 24;
/// Bodies start at this alignment (counted from the frame start), so that an
/// Arrow body read into an aligned buffer is used in place.
pub const BODY_ALIGNMENT: usize = 64;
/// Metadata is small by design (sequence numbers, schemas, messages).
pub const MAX_META_LEN: u32 = 1 << 20;

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    Open = 1,
    NeedBody = 2,
    Body = 3,
    Ready = 4,
    Batch = 5,
    Ack = 6,
    End = 7,
    Status = 8,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Open,
            2 => Self::NeedBody,
            3 => Self::Body,
            4 => Self::Ready,
            5 => Self::Batch,
            6 => Self::Ack,
            7 => Self::End,
            8 => Self::Status,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::NeedBody => "need_body",
            Self::Body => "body",
            Self::Ready => "ready",
            Self::Batch => "batch",
            Self::Ack => "ack",
            Self::End => "end",
            Self::Status => "status",
        }
    }
}

/// Why bytes are not a valid frame or message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    BadMagic([u8; 4]),
    UnknownKind(u8),
    NonZeroReserved,
    MetaTooLarge(u32),
    BodyTooLarge { len: u64, limit: u64 },
    Truncated(&'static str),
    Invalid(String),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadMagic(m) => write!(f, "not a flightpickle executor frame (magic {m:02x?})"),
            Self::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            Self::NonZeroReserved => write!(f, "reserved frame header bytes are not zero"),
            Self::MetaTooLarge(n) => {
                write!(f, "frame metadata of {n} bytes exceeds the limit of {MAX_META_LEN}")
            }
            Self::BodyTooLarge { len, limit } => {
                write!(f, "frame body of {len} bytes exceeds the limit of {limit} bytes")
            }
            Self::Truncated(what) => write!(f, "truncated {what}"),
            Self::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// The fixed part of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: FrameKind,
    pub meta_len: u32,
    pub body_len: u64,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&FRAME_MAGIC);
        out[4] = self.kind as u8;
        out[8..12].copy_from_slice(&self.meta_len.to_le_bytes());
        out[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        out
    }

    /// Parses and bounds-checks a header before any of its lengths is trusted.
    pub fn decode(bytes: &[u8; HEADER_LEN], body_limit: u64) -> Result<Self, CodecError> {
        let magic: [u8; 4] = bytes[..4].try_into().expect("4 bytes");
        if magic != FRAME_MAGIC {
            return Err(CodecError::BadMagic(magic));
        }
        let kind = FrameKind::from_byte(bytes[4]).ok_or(CodecError::UnknownKind(bytes[4]))?;
        if bytes[5..8] != [0; 3] || bytes[12..16] != [0; 4] {
            return Err(CodecError::NonZeroReserved);
        }
        let meta_len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let body_len = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        if meta_len > MAX_META_LEN {
            return Err(CodecError::MetaTooLarge(meta_len));
        }
        if body_len > body_limit {
            return Err(CodecError::BodyTooLarge {
                len: body_len,
                limit: body_limit,
            });
        }
        Ok(Self {
            kind,
            meta_len,
            body_len,
        })
    }

    /// Zero bytes between the metadata and the body that put the body on a
    /// 64-byte boundary; none when there is no body.
    pub fn padding_len(&self) -> usize {
        if self.body_len == 0 {
            return 0;
        }
        let used = HEADER_LEN + self.meta_len as usize;
        used.next_multiple_of(BODY_ALIGNMENT) - used
    }
}

/// How the service evaluates the function; the names are Spark's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EvalKind {
    /// `udf` (Arrow-batched): the function is called once per row.
    ScalarRow = 1,
    /// `pandas_udf`: Series in, Series out.
    ScalarPandas = 2,
    /// `mapInArrow`: an iterator of record batches in and out.
    MapArrow = 3,
    /// `mapInPandas`: an iterator of DataFrames in and out.
    MapPandas = 4,
    /// `applyInPandas`: one DataFrame per group, each input batch one group.
    GroupedMapPandas = 5,
    /// The iterator `pandas_udf`: one call per stream over an iterator of the
    /// arguments' Series, its results split as it likes, as many rows in all.
    ScalarPandasIter = 6,
    /// The grouped-aggregate `pandas_udf`: one value per UDF for each input
    /// batch, each batch one group.
    GroupedAggPandas = 7,
    /// `applyInArrow` with a function of a `pyarrow.Table`: one table per
    /// input batch, each batch one group.
    GroupedMapArrow = 8,
    /// `applyInArrow` with a function of an iterator of record batches: one
    /// call per input batch, each batch one group.
    GroupedMapArrowIter = 9,
}

impl EvalKind {
    pub const ALL: [EvalKind; 9] = [
        Self::ScalarRow,
        Self::ScalarPandas,
        Self::MapArrow,
        Self::MapPandas,
        Self::GroupedMapPandas,
        Self::ScalarPandasIter,
        Self::GroupedAggPandas,
        Self::GroupedMapArrow,
        Self::GroupedMapArrowIter,
    ];

    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| *kind as u8 == byte)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ScalarRow => "scalar_row",
            Self::ScalarPandas => "scalar_pandas",
            Self::MapArrow => "map_arrow",
            Self::MapPandas => "map_pandas",
            Self::GroupedMapPandas => "grouped_map_pandas",
            Self::ScalarPandasIter => "scalar_pandas_iter",
            Self::GroupedAggPandas => "grouped_agg_pandas",
            Self::GroupedMapArrow => "grouped_map_arrow",
            Self::GroupedMapArrowIter => "grouped_map_arrow_iter",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// The first message of a stream: what to run and on what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u16,
    pub kind: EvalKind,
    /// Report a failing row in an extra `error` column instead of failing
    /// the stream (row-wise scalar functions only).
    pub row_errors: bool,
    /// Most input batches the client sends before an `Ack` for the oldest.
    pub window: u32,
    /// Digest of the sealed function, as the envelope states it.
    pub digest: String,
    /// Columns that identify a group (grouped map only).
    pub group_keys: Vec<String>,
    /// IPC `Schema` messages (flatbuffers) of the input and the output.
    pub input_schema: Vec<u8>,
    pub output_schema: Vec<u8>,
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum StatusCode {
    Ok = 0,
    /// The function raised; the message is its Python traceback.
    UdfError = 1,
    /// The peer broke the protocol (malformed frame, wrong order, schema).
    ProtocolError = 2,
    /// The service does not have the function and was not sent it.
    UnknownDigest = 3,
    /// An idle or total deadline passed.
    Deadline = 4,
    /// The service is shutting down and took no new stream.
    Unavailable = 5,
    /// The worker serving the stream died. Only the Flight front sends it:
    /// over a Unix socket the caller sees the connection close instead.
    WorkerLost = 6,
}

impl StatusCode {
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Ok,
            1 => Self::UdfError,
            2 => Self::ProtocolError,
            3 => Self::UnknownDigest,
            4 => Self::Deadline,
            5 => Self::Unavailable,
            6 => Self::WorkerLost,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::UdfError => "udf_error",
            Self::ProtocolError => "protocol_error",
            Self::UnknownDigest => "unknown_digest",
            Self::Deadline => "deadline",
            Self::Unavailable => "unavailable",
            Self::WorkerLost => "worker_lost",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        (0..=6).filter_map(Self::from_byte).find(|code| code.name() == name)
    }
}

/// Builds metadata field by field: integers little-endian, byte strings
/// prefixed with their u32 length.
#[derive(Default)]
pub struct MetaWriter(Vec<u8>);

impl MetaWriter {
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(self, v: &[u8]) -> Self {
        let mut this = self.u32(u32::try_from(v.len()).expect("metadata field under 4 GiB"));
        this.0.extend_from_slice(v);
        this
    }
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads metadata written by [`MetaWriter`], refusing short or trailing bytes.
pub struct MetaReader<'a>(&'a [u8]);

impl<'a> MetaReader<'a> {
    pub fn new(meta: &'a [u8]) -> Self {
        Self(meta)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(1, what)?[0])
    }
    pub fn u16(&mut self, what: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2")))
    }
    pub fn u32(&mut self, what: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4")))
    }
    pub fn u64(&mut self, what: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8")))
    }
    pub fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], CodecError> {
        let len = self.u32(what)? as usize;
        self.take(len, what)
    }
    pub fn string(&mut self, what: &'static str) -> Result<String, CodecError> {
        let raw = self.bytes(what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| CodecError::Invalid(format!("{what} is not UTF-8")))
    }
    /// The bytes not read yet (a trailing flatbuffer, for one).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }
    pub fn finish(self, what: &'static str) -> Result<(), CodecError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CodecError::Invalid(format!(
                "{} unexpected trailing bytes in {what}",
                self.0.len()
            )))
        }
    }
}

impl Open {
    pub fn encode(&self) -> Vec<u8> {
        let keys = self
            .group_keys
            .iter()
            .fold(MetaWriter::default().u32(self.group_keys.len() as u32), |w, k| {
                w.bytes(k.as_bytes())
            });
        MetaWriter(keys.finish())
            .u16(self.version)
            .u8(self.kind as u8)
            .u8(u8::from(self.row_errors))
            .u32(self.window)
            .bytes(self.digest.as_bytes())
            .bytes(&self.input_schema)
            .bytes(&self.output_schema)
            .finish()
    }

    pub fn decode(meta: &[u8]) -> Result<Self, CodecError> {
        let mut r = MetaReader::new(meta);
        let key_count = r.u32("group key count")?;
        if key_count > 4096 {
            return Err(CodecError::Invalid(format!("{key_count} group keys is too many")));
        }
        let group_keys = (0..key_count)
            .map(|_| r.string("group key"))
            .collect::<Result<_, _>>()?;
        let version = r.u16("protocol version")?;
        let kind_byte = r.u8("evaluation kind")?;
        let kind = EvalKind::from_byte(kind_byte)
            .ok_or_else(|| CodecError::Invalid(format!("unknown evaluation kind {kind_byte}")))?;
        let row_errors = match r.u8("row errors flag")? {
            0 => false,
            1 => true,
            other => return Err(CodecError::Invalid(format!("row errors flag {other} is not 0 or 1"))),
        };
        let window = r.u32("window")?;
        if window == 0 {
            return Err(CodecError::Invalid("a window of 0 batches lets nothing through".into()));
        }
        let digest = r.string("digest")?;
        let input_schema = r.bytes("input schema")?.to_vec();
        let output_schema = r.bytes("output schema")?.to_vec();
        r.finish("open")?;
        Ok(Self {
            version,
            kind,
            row_errors,
            window,
            digest,
            group_keys,
            input_schema,
            output_schema,
        })
    }
}

/// Metadata of `Batch`: a sequence number, then the IPC `RecordBatch` message.
pub fn encode_batch_meta(seq: u64, ipc_message: &[u8]) -> Vec<u8> {
    let mut meta = MetaWriter::default().u64(seq).finish();
    meta.extend_from_slice(ipc_message);
    meta
}

pub fn decode_batch_meta(meta: &[u8]) -> Result<(u64, &[u8]), CodecError> {
    let mut r = MetaReader::new(meta);
    let seq = r.u64("batch sequence number")?;
    Ok((seq, r.rest()))
}

/// Metadata of `Ack` and `End`: one count or sequence number.
pub fn encode_u64_meta(value: u64) -> Vec<u8> {
    MetaWriter::default().u64(value).finish()
}

pub fn decode_u64_meta(meta: &[u8], what: &'static str) -> Result<u64, CodecError> {
    let mut r = MetaReader::new(meta);
    let value = r.u64(what)?;
    r.finish(what)?;
    Ok(value)
}

pub fn encode_status_meta(code: StatusCode, message: &str) -> Vec<u8> {
    MetaWriter::default().u8(code as u8).bytes(message.as_bytes()).finish()
}

pub fn decode_status_meta(meta: &[u8]) -> Result<(StatusCode, String), CodecError> {
    let mut r = MetaReader::new(meta);
    let byte = r.u8("status code")?;
    let code = StatusCode::from_byte(byte).ok_or_else(|| CodecError::Invalid(format!("unknown status code {byte}")))?;
    let message = r.string("status message")?;
    r.finish("status")?;
    Ok((code, message))
}

/// What the service measured while serving a stream, carried in the body of
/// its final `Status` (an empty body: nothing measured, as from a service
/// that predates it). Callers sum these into their metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Nanoseconds the worker spent in the function: calling it, converting
    /// its inputs and results, but not waiting for the caller.
    pub function_nanos: u64,
    /// Whether the worker had the function by its digest (a cache hit),
    /// rather than opening it from the body.
    pub function_cached: bool,
}

/// Bytes of the fields of [`StreamStats`] this version knows.
pub const STREAM_STATS_LEN: usize = 9;

impl StreamStats {
    pub fn encode(&self) -> Vec<u8> {
        MetaWriter::default()
            .u64(self.function_nanos)
            .u8(u8::from(self.function_cached))
            .finish()
    }

    /// The stats in a `Status` body: `None` for an empty body. Bytes after
    /// the known fields are ignored, so that later versions can add fields.
    pub fn decode(body: &[u8]) -> Result<Option<Self>, CodecError> {
        if body.is_empty() {
            return Ok(None);
        }
        let mut r = MetaReader::new(body);
        let function_nanos = r.u64("stream stats: function time")?;
        let function_cached = match r.u8("stream stats: function cached")? {
            0 => false,
            1 => true,
            other => {
                return Err(CodecError::Invalid(format!(
                    "stream stats: function cached flag {other} is not 0 or 1"
                )));
            }
        };
        Ok(Some(Self {
            function_nanos,
            function_cached,
        }))
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
