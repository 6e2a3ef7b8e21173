//! The executor protocol carried by Arrow Flight `DoExchange` (the "Over
//! Arrow Flight" part of `PROTOCOL.md`): which `FlightData` each protocol
//! message becomes, and back.
//!
//! Nothing here touches the network. The Flight front (`flight_front`) reads
//! `FlightData` from gRPC and frames from a worker's Unix socket and asks this
//! module what each one means on the other side; the Flight client
//! (`flight_client`) asks the reverse: which `FlightData` a caller's frame
//! becomes, and which frame a reply stands for. Every rule of the mapping is
//! unit-tested on values.
//!
//! Batches are not decoded: the IPC `RecordBatch` header and body of a
//! `FlightData` are the metadata and body of a local `Batch` frame, so the
//! front moves their bytes and the worker, which decodes them anyway, checks
//! them.

use arrow_buffer::Buffer;
use arrow_flight::flight_descriptor::DescriptorType;
use arrow_flight::{FlightData, FlightDescriptor};
use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::batch::{decode_schema, encode_schema};
use super::codec::{self, CodecError, EvalKind, FrameKind, Open, StatusCode, StreamStats};
use super::wire::Frame;

/// Longest message put in a gRPC status: it travels in an HTTP/2 trailer,
/// which clients cap (gRPC's default is 8 KiB of metadata). The whole message
/// is in the `Status` message before it.
pub const GRPC_MESSAGE_LIMIT: usize = 4096;

/// Fields of the `Open` document in the descriptor's command.
const OPEN_FIELDS: [&str; 9] = [
    "body_follows",
    "stats",
    "version",
    "kind",
    "digest",
    "window",
    "row_errors",
    "group_keys",
    "output_schema",
];

/// A message from the caller after the first one, as the local frame it becomes.
#[derive(Debug, PartialEq, Eq)]
pub struct ForwardFrame {
    pub kind: FrameKind,
    pub meta: Vec<u8>,
    pub body: Bytes,
}

/// What the service's frame becomes for the caller: messages to send, and
/// when the frame was the final status, how the call ends.
#[derive(Debug)]
pub struct Reply {
    pub messages: Vec<FlightData>,
    pub end: Option<(StatusCode, String)>,
}

fn invalid(why: impl Into<String>) -> CodecError {
    CodecError::Invalid(why.into())
}

/// Whether the first message is the input schema itself; pyarrow sends the
/// descriptor alone first and the schema (from `writer.begin`) next.
pub fn carries_schema(first: &FlightData) -> bool {
    !first.data_header.is_empty()
}

/// The stream's `Open`: the first message's descriptor holds a JSON
/// document, and `schema_message` (the first message itself, or the one after
/// it) the input schema.
pub fn open_from(first: &FlightData, schema_message: &FlightData) -> Result<Open, CodecError> {
    let document = first_document(first)?;
    for message in [first, schema_message] {
        if !message.app_metadata.is_empty() || !message.data_body.is_empty() {
            return Err(invalid(
                "the stream must start with the descriptor and the input schema alone (no app_metadata, no body)",
            ));
        }
    }
    let input = decode_schema(&schema_message.data_header)
        .map_err(|e| invalid(format!("the stream does not start with the input schema: {e}")))?;
    let kind_name = required(&document, "kind")?
        .as_str()
        .ok_or_else(|| invalid("open: kind is not a string"))?;
    let kind = EvalKind::from_name(kind_name).ok_or_else(|| invalid(format!("open: unknown kind {kind_name:?}")))?;
    let window = u32_field(&document, "window")?;
    if window == 0 {
        return Err(invalid("open: a window of 0 batches lets nothing through"));
    }
    Ok(Open {
        version: u16::try_from(u32_field(&document, "version")?).map_err(|_| invalid("open: version too large"))?,
        kind,
        row_errors: optional(&document, "row_errors", Value::as_bool, false)?,
        window,
        digest: required(&document, "digest")?
            .as_str()
            .ok_or_else(|| invalid("open: digest is not a string"))?
            .into(),
        group_keys: group_keys(&document)?,
        input_schema: encode_schema(&input)?,
        output_schema: output_schema(&document)?,
    })
}

/// The open document of the first message, so that a bad one is refused
/// before waiting for a schema message.
pub fn first_document(first: &FlightData) -> Result<Map<String, Value>, CodecError> {
    let descriptor = first
        .flight_descriptor
        .as_ref()
        .ok_or_else(|| invalid("the first message has no flight descriptor; it must carry the open document"))?;
    open_document(descriptor)
}

fn open_document(descriptor: &FlightDescriptor) -> Result<Map<String, Value>, CodecError> {
    if descriptor.r#type != DescriptorType::Cmd as i32 {
        return Err(invalid(
            "the flight descriptor must be a command (FlightDescriptor.for_command)",
        ));
    }
    let document: Value = serde_json::from_slice(&descriptor.cmd)
        .map_err(|e| invalid(format!("the descriptor's command is not a JSON open document: {e}")))?;
    let Value::Object(fields) = document else {
        return Err(invalid("the descriptor's command must be a JSON object"));
    };
    if let Some(unknown) = fields.keys().find(|key| !OPEN_FIELDS.contains(&key.as_str())) {
        return Err(invalid(format!("open: unknown field {unknown:?}")));
    }
    Ok(fields)
}

fn required<'a>(document: &'a Map<String, Value>, field: &str) -> Result<&'a Value, CodecError> {
    document
        .get(field)
        .ok_or_else(|| invalid(format!("open: missing field {field:?}")))
}

fn u32_field(document: &Map<String, Value>, field: &str) -> Result<u32, CodecError> {
    required(document, field)?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| invalid(format!("open: {field} is not an integer from 0 to 2^32-1")))
}

fn optional<T>(
    document: &Map<String, Value>,
    field: &str,
    read: impl Fn(&Value) -> Option<T>,
    default: T,
) -> Result<T, CodecError> {
    match document.get(field) {
        None => Ok(default),
        Some(value) => read(value).ok_or_else(|| invalid(format!("open: {field} has the wrong type"))),
    }
}

fn group_keys(document: &Map<String, Value>) -> Result<Vec<String>, CodecError> {
    let keys = optional(document, "group_keys", |v| v.as_array().cloned(), Vec::new())?;
    keys.iter()
        .map(|key| {
            key.as_str()
                .map(String::from)
                .ok_or_else(|| invalid("open: group_keys must be strings"))
        })
        .collect()
}

/// The output schema is base64 of an encapsulated IPC schema message (what
/// `pyarrow.Schema.serialize()` returns); it is passed on as the bare
/// flatbuffer the local `Open` carries.
fn output_schema(document: &Map<String, Value>) -> Result<Vec<u8>, CodecError> {
    let text = required(document, "output_schema")?
        .as_str()
        .ok_or_else(|| invalid("open: output_schema is not a string"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| invalid(format!("open: output_schema is not base64: {e}")))?;
    let schema = arrow_ipc::convert::try_schema_from_ipc_buffer(&bytes)
        .map_err(|e| invalid(format!("open: output_schema is not an Arrow IPC schema: {e}")))?;
    encode_schema(&schema)
}

/// Whether the caller sends the sealed function right after the input
/// schema (the document's `body_follows`), so that the service opens it
/// without asking for it with `NeedBody`.
pub fn body_follows(first: &FlightData) -> Result<bool, CodecError> {
    optional(&first_document(first)?, "body_follows", Value::as_bool, false)
}

/// Whether the caller asked for the service's measurements (the document's
/// `stats`): a `Stats` message just before the final `Status`. Callers
/// that do not ask never see the message, which they would not know.
pub fn wants_stats(first: &FlightData) -> Result<bool, CodecError> {
    optional(&first_document(first)?, "stats", Value::as_bool, false)
}

/// The sealed function from the message that follows the input schema when
/// `body_follows` says so: a `Body` message with a non-empty envelope.
pub fn eager_body(message: &FlightData) -> Result<Bytes, CodecError> {
    match caller_frame(message) {
        Ok(ForwardFrame {
            kind: FrameKind::Body,
            body,
            ..
        }) if !body.is_empty() => Ok(body),
        Ok(frame) => Err(invalid(format!(
            "body_follows: the message after the input schema must be a Body with the sealed function, not {}",
            if frame.kind == FrameKind::Body {
                "an empty Body"
            } else {
                frame.kind.name()
            }
        ))),
        Err(e) => Err(invalid(format!("body_follows: {e}"))),
    }
}

/// A later message from the caller: `Body`, `Batch` or `End`, named by the
/// first byte of its `app_metadata`. A descriptor on it is ignored (some
/// clients repeat it on every message).
pub fn caller_frame(data: &FlightData) -> Result<ForwardFrame, CodecError> {
    let (&tag, rest) = data
        .app_metadata
        .split_first()
        .ok_or_else(|| invalid("a message after the first has no app_metadata saying what it is"))?;
    let kind = match tag {
        3 => FrameKind::Body,
        5 => FrameKind::Batch,
        7 => FrameKind::End,
        other => {
            return Err(invalid(format!(
                "app_metadata kind {other} is not one a caller sends (3, 5 or 7)"
            )));
        }
    };
    let expects_batch = kind == FrameKind::Batch;
    if expects_batch == data.data_header.is_empty() {
        let what = if expects_batch {
            "a batch without"
        } else {
            "a non-batch message with"
        };
        return Err(invalid(format!("{what} an IPC record batch header")));
    }
    let frame = |meta, body| Ok(ForwardFrame { kind, meta, body });
    match kind {
        FrameKind::Body if data.data_body.is_empty() => frame(Vec::new(), data.app_metadata.slice(1..)),
        FrameKind::Body => Err(invalid("body: the sealed function goes in app_metadata, not data_body")),
        FrameKind::Batch => {
            let seq = codec::decode_u64_meta(rest, "batch sequence number")?;
            frame(codec::encode_batch_meta(seq, &data.data_header), data.data_body.clone())
        }
        _ => {
            let count = codec::decode_u64_meta(rest, "end count")?;
            frame(codec::encode_u64_meta(count), Bytes::new())
        }
    }
}

fn metadata_only(app_metadata: Vec<u8>) -> FlightData {
    FlightData {
        app_metadata: app_metadata.into(),
        ..Default::default()
    }
}

fn tagged(kind: FrameKind, value: u64) -> FlightData {
    let mut meta = vec![kind as u8];
    meta.extend_from_slice(&value.to_le_bytes());
    metadata_only(meta)
}

/// The `Status` message: kind byte, code byte, then the UTF-8 message.
pub fn status_message(code: StatusCode, message: &str) -> FlightData {
    let mut meta = vec![FrameKind::Status as u8, code as u8];
    meta.extend_from_slice(message.as_bytes());
    metadata_only(meta)
}

/// App metadata kind of the `Stats` message, which only Flight has: over a
/// Unix socket the stats are the body of the `Status` frame.
pub const STATS_MESSAGE: u8 = 9;

/// The `Stats` message: its kind byte, then the stats as a `Status` body
/// carries them locally.
pub fn stats_message(stats: &StreamStats) -> FlightData {
    let mut meta = vec![STATS_MESSAGE];
    meta.extend_from_slice(&stats.encode());
    metadata_only(meta)
}

/// What the service's `frame` becomes; `output_schema` is the stream's
/// output schema flatbuffer, sent with `Ready` so that Flight readers can
/// decode the results. With `stats`, a final status that carries the
/// service's measurements is preceded by a `Stats` message.
pub fn service_reply(frame: &Frame, output_schema: &[u8], stats: bool) -> Result<Reply, CodecError> {
    let messages = |messages| Ok(Reply { messages, end: None });
    match frame.kind {
        FrameKind::NeedBody => messages(vec![metadata_only(vec![FrameKind::NeedBody as u8])]),
        FrameKind::Ready => {
            let schema = FlightData {
                data_header: Bytes::copy_from_slice(output_schema),
                ..Default::default()
            };
            messages(vec![schema, metadata_only(vec![FrameKind::Ready as u8])])
        }
        FrameKind::Batch => {
            let (seq, header) = codec::decode_batch_meta(&frame.meta)?;
            let mut batch = tagged(FrameKind::Batch, seq);
            batch.data_header = Bytes::copy_from_slice(header);
            batch.data_body = shared_bytes(&frame.body);
            messages(vec![batch])
        }
        FrameKind::Ack => messages(vec![tagged(
            FrameKind::Ack,
            codec::decode_u64_meta(&frame.meta, "ack")?,
        )]),
        FrameKind::Status => {
            let (code, message) = codec::decode_status_meta(&frame.meta)?;
            let measured = StreamStats::decode(&frame.body)?.filter(|_| stats);
            let mut messages: Vec<FlightData> = measured.iter().map(stats_message).collect();
            messages.push(status_message(code, &message));
            Ok(Reply {
                messages,
                end: Some((code, message)),
            })
        }
        other => Err(invalid(format!(
            "the worker sent {}, which only a caller sends",
            other.name()
        ))),
    }
}

/// The messages that carry a caller's local frame over Flight: `Open`
/// becomes the descriptor with the open document on the input schema
/// message (the function is never sent up front: `body_follows` stays
/// false and the service asks for it with `NeedBody`); `Body`, `Batch` and
/// `End` become tagged messages. The inverse of [`open_from`] and
/// [`caller_frame`].
pub fn caller_message(kind: FrameKind, meta: &[u8], body: Bytes) -> Result<FlightData, CodecError> {
    match kind {
        FrameKind::Open => open_message(&Open::decode(meta)?),
        FrameKind::Body => {
            let mut tagged = Vec::with_capacity(body.len() + 1);
            tagged.push(FrameKind::Body as u8);
            tagged.extend_from_slice(&body);
            Ok(metadata_only(tagged))
        }
        FrameKind::Batch => {
            let (seq, header) = codec::decode_batch_meta(meta)?;
            let mut batch = tagged(FrameKind::Batch, seq);
            batch.data_header = Bytes::copy_from_slice(header);
            batch.data_body = body;
            Ok(batch)
        }
        FrameKind::End => Ok(tagged(FrameKind::End, codec::decode_u64_meta(meta, "end count")?)),
        other => Err(invalid(format!("{} is not a message a caller sends", other.name()))),
    }
}

fn open_message(open: &Open) -> Result<FlightData, CodecError> {
    let document = serde_json::json!({
        "version": open.version,
        "kind": open.kind.name(),
        "digest": open.digest,
        "window": open.window,
        "row_errors": open.row_errors,
        "group_keys": open.group_keys,
        // The caller reads the service's measurements as a Unix caller
        // does from the status body: it always asks for them.
        "stats": true,
        "output_schema": base64::engine::general_purpose::STANDARD.encode(encapsulated(&open.output_schema)),
    });
    Ok(FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(document.to_string())),
        data_header: Bytes::copy_from_slice(&open.input_schema),
        ..Default::default()
    })
}

/// A schema flatbuffer as an encapsulated IPC message (continuation marker,
/// length, flatbuffer), what the open document carries.
fn encapsulated(flatbuffer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + flatbuffer.len());
    out.extend_from_slice(&[0xff; 4]);
    out.extend_from_slice(&(flatbuffer.len() as i32).to_le_bytes());
    out.extend_from_slice(flatbuffer);
    out
}

/// The local frame a reply from the service stands for; `None` for the
/// message that carries the output schema before `Ready` (Flight readers
/// need it; the caller has the schema already). The inverse of
/// [`service_reply`].
pub fn service_frame(data: &FlightData) -> Result<Option<Frame>, CodecError> {
    let Some((&tag, rest)) = data.app_metadata.split_first() else {
        if data.data_header.is_empty() {
            return Err(invalid("the executor sent a message without app_metadata"));
        }
        return Ok(None);
    };
    let only = |kind: FrameKind| {
        if rest.is_empty() {
            Ok(Some(Frame::new(kind, Vec::new())))
        } else {
            Err(invalid(format!("{} carries unexpected bytes", kind.name())))
        }
    };
    match tag {
        2 => only(FrameKind::NeedBody),
        4 => only(FrameKind::Ready),
        5 => {
            let seq = codec::decode_u64_meta(rest, "batch sequence number")?;
            if data.data_header.is_empty() {
                return Err(invalid("a result batch without an IPC record batch header"));
            }
            Ok(Some(Frame {
                kind: FrameKind::Batch,
                meta: codec::encode_batch_meta(seq, &data.data_header),
                body: Buffer::from(data.data_body.clone()),
            }))
        }
        6 => Ok(Some(Frame::new(
            FrameKind::Ack,
            codec::encode_u64_meta(codec::decode_u64_meta(rest, "ack")?),
        ))),
        8 => {
            let (&code, message) = rest.split_first().ok_or(CodecError::Truncated("status code"))?;
            let code = StatusCode::from_byte(code).ok_or_else(|| invalid(format!("unknown status code {code}")))?;
            let message = String::from_utf8_lossy(message);
            Ok(Some(Frame::new(
                FrameKind::Status,
                codec::encode_status_meta(code, &message),
            )))
        }
        other => Err(invalid(format!(
            "app_metadata kind {other} is not one the executor sends (2, 4, 5, 6 or 8)"
        ))),
    }
}

/// The stats a `Stats` message carries (the caller asked for them in its
/// open document); `None` for every other message.
pub fn service_stats(data: &FlightData) -> Result<Option<StreamStats>, CodecError> {
    match data.app_metadata.split_first() {
        Some((&STATS_MESSAGE, rest)) => StreamStats::decode(rest)?
            .map(Some)
            .ok_or_else(|| invalid("a Stats message without stats")),
        _ => Ok(None),
    }
}

/// The service's frame after a `Stats` message, with the stats put back in
/// the body of its `Status`, where a Unix caller finds them; the service
/// sends `Stats` only right before `Status`.
pub fn with_stats(mut frame: Frame, stats: Option<StreamStats>) -> Result<Frame, CodecError> {
    let Some(stats) = stats else {
        return Ok(frame);
    };
    if frame.kind != FrameKind::Status {
        return Err(invalid(format!(
            "the executor sent stats followed by {}, not the status",
            frame.kind.name()
        )));
    }
    frame.body = Buffer::from_vec(stats.encode());
    Ok(frame)
}

/// The frame's aligned body as `Bytes` without a copy.
fn shared_bytes(body: &Buffer) -> Bytes {
    if body.is_empty() {
        Bytes::new()
    } else {
        Bytes::from_owner(body.clone())
    }
}

/// The gRPC status a stream that ended with `code` ends with.
pub fn grpc_code(code: StatusCode) -> tonic::Code {
    match code {
        StatusCode::Ok => tonic::Code::Ok,
        StatusCode::UdfError => tonic::Code::Unknown,
        StatusCode::ProtocolError => tonic::Code::InvalidArgument,
        StatusCode::UnknownDigest => tonic::Code::NotFound,
        StatusCode::Deadline => tonic::Code::DeadlineExceeded,
        StatusCode::Unavailable => tonic::Code::Unavailable,
        StatusCode::WorkerLost => tonic::Code::Aborted,
    }
}

/// The gRPC status of a failed stream, its message cut to what trailers carry.
pub fn grpc_status(code: StatusCode, message: &str) -> tonic::Status {
    let mut end = message.len().min(GRPC_MESSAGE_LIMIT);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = if end < message.len() {
        format!("{}…", &message[..end])
    } else {
        message.to_string()
    };
    tonic::Status::new(grpc_code(code), format!("{}: {text}", code.name()))
}

#[cfg(test)]
#[path = "flight_map_tests.rs"]
mod tests;
