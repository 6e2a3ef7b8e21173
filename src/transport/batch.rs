//! Record batches and schemas as Arrow IPC messages: the flatbuffer `Message`
//! travels in a frame's metadata and the buffers are the frame's body, which
//! the receiver reads into a 64-byte aligned buffer and decodes in place.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, GenericStringArray, OffsetSizeTrait, RecordBatch, RecordBatchOptions, StructArray};
use arrow_buffer::Buffer;
use arrow_data::ArrayData;
use arrow_data::UnsafeFlag;
use arrow_ipc::reader::RecordBatchDecoder;
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions, StreamEncoder};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::batch_checks::{check_buffers_in_body, check_layout, check_text, check_values, is_flat};
use super::caught_panic::catch_silently;
use super::codec::CodecError;
use super::flat_batch::{FlatColumn, FlatEncoder, flat_data};

/// A batch ready for the wire.
#[derive(Debug)]
pub struct EncodedBatch {
    pub ipc_message: Vec<u8>,
    pub body: Vec<u8>,
}

/// The IPC `Schema` message (flatbuffer, no stream prefix) of `schema`.
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>, CodecError> {
    refuse_dictionaries(schema)?;
    let mut tracker = DictionaryTracker::new(false);
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        schema,
        &mut tracker,
        &IpcWriteOptions::default(),
    );
    Ok(encoded.ipc_message)
}

pub fn decode_schema(ipc_message: &[u8]) -> Result<Schema, CodecError> {
    let schema = arrow_ipc::convert::try_schema_from_flatbuffer_bytes(ipc_message)
        .map_err(|e| CodecError::Invalid(format!("bad schema message: {e}")))?;
    refuse_dictionaries(&schema)?;
    Ok(schema)
}

/// Encodes `batch`, which must have exactly the types of `schema` (the
/// schema the stream announced; field names may differ, as in Spark).
pub fn encode_batch(batch: &RecordBatch, schema: &Schema) -> Result<EncodedBatch, CodecError> {
    check_types(batch.schema_ref(), schema)?;
    let mut tracker = DictionaryTracker::new(false);
    let (dictionaries, encoded) = IpcDataGenerator::default()
        .encode(
            batch,
            &mut tracker,
            &IpcWriteOptions::default(),
            &mut IpcWriteContext::default(),
        )
        .map_err(|e| CodecError::Invalid(format!("cannot encode batch: {e}")))?;
    debug_assert!(dictionaries.is_empty(), "schemas with dictionaries are refused");
    Ok(EncodedBatch {
        ipc_message: encoded.ipc_message,
        body: encoded.arrow_data,
    })
}

/// A batch ready for the wire whose body is the arrays' own buffers, with
/// the padding between them, in order: nothing of the arrays is copied.
#[derive(Debug)]
pub struct BatchParts {
    pub ipc_message: Buffer,
    pub body: Vec<Buffer>,
}

impl BatchParts {
    pub fn body_slices(&self) -> Vec<&[u8]> {
        self.body.iter().map(|part| part.as_slice()).collect()
    }
}

/// Encodes the batches of one stream as [`BatchParts`], the same bytes as
/// [`encode_batch`] gives. It keeps arrow-ipc's stream encoder, the one
/// encoder that hands out the arrays' buffers rather than copying them into
/// one body; the stream's schema message it emits first is dropped (the
/// protocol sends schemas in `Open`).
pub struct BatchEncoder {
    schema: SchemaRef,
    stream: StreamEncoder,
    flat: FlatEncoder,
}

impl BatchEncoder {
    pub fn new(schema: SchemaRef) -> Result<Self, CodecError> {
        refuse_dictionaries(&schema)?;
        let stream = StreamEncoder::try_new(&schema).map_err(|e| CodecError::Invalid(format!("cannot encode: {e}")))?;
        Ok(Self {
            schema,
            stream,
            flat: FlatEncoder::default(),
        })
    }

    pub fn encode(&mut self, batch: &RecordBatch) -> Result<BatchParts, CodecError> {
        check_types(batch.schema_ref(), &self.schema)?;
        let buffers = self
            .stream
            .encode(batch)
            .map_err(|e| CodecError::Invalid(format!("cannot encode batch: {e}")))?;
        last_record_batch(buffers)
    }

    /// The IPC message of a batch of flat columns held as raw buffers (see
    /// [`FlatEncoder`]), of the types of `schema`, which must be the
    /// stream's; its body is appended to `body`.
    pub fn encode_flat<'a>(
        &mut self,
        schema: &Schema,
        rows: usize,
        columns: &[FlatColumn<'a>],
        body: &mut Vec<&'a [u8]>,
    ) -> Result<&[u8], CodecError> {
        check_types(schema, &self.schema)?;
        self.flat.encode(&self.schema, rows, columns, body)
    }
}

/// The record batch among the framed IPC messages a stream encoder gave:
/// each message is an 8-byte prefix (continuation marker, padded metadata
/// length), the flatbuffer, its padding if any, then buffers and padding
/// adding up to the body length the flatbuffer states.
fn last_record_batch(buffers: Vec<Buffer>) -> Result<BatchParts, CodecError> {
    let bad = |why: &str| CodecError::Invalid(format!("unexpected stream encoder output: {why}"));
    let mut parts = buffers.into_iter();
    while let Some(prefix) = parts.next() {
        let padded_len = match prefix.as_slice() {
            [0xff, 0xff, 0xff, 0xff, len @ ..] if len.len() == 4 => {
                u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize
            }
            _ => return Err(bad("no message prefix")),
        };
        let ipc_message = parts.next().ok_or_else(|| bad("no metadata"))?;
        take_bytes(&mut parts, padded_len - padded_len.min(ipc_message.len()))
            .ok_or_else(|| bad("short metadata padding"))?;
        // SAFETY: the flatbuffer is one arrow-ipc's encoder wrote just now,
        // not bytes from a peer; verifying it cost more than the rest of
        // taking a small batch's message apart.
        let message = unsafe { arrow_ipc::root_as_message_unchecked(&ipc_message) };
        let body_len = usize::try_from(message.bodyLength()).map_err(|_| bad("negative body length"))?;
        let is_batch = message.header_as_record_batch().is_some();
        let body = take_bytes(&mut parts, body_len).ok_or_else(|| bad("short body"))?;
        if is_batch {
            return Ok(BatchParts { ipc_message, body });
        }
    }
    Err(bad("no record batch message"))
}

/// The next buffers, which must add up to exactly `len` bytes.
fn take_bytes(parts: &mut impl Iterator<Item = Buffer>, len: usize) -> Option<Vec<Buffer>> {
    let mut taken = Vec::new();
    let mut have = 0;
    while have < len {
        let part = parts.next()?;
        have += part.len();
        taken.push(part);
    }
    (have == len).then_some(taken)
}

/// Decodes a batch of `schema` from its IPC message and body; the body's
/// buffers become the arrays' buffers without a copy when they are aligned.
pub fn decode_batch(ipc_message: &[u8], body: &Buffer, schema: &SchemaRef) -> Result<RecordBatch, CodecError> {
    let (message, header) = record_batch_message(ipc_message, body, schema)?;
    if header.compression().is_none() && is_flat(schema) {
        return decode_flat(body, header, schema, &message.version()).map_err(bad_message);
    }
    decode_other(body, header, schema, &message.version())
}

/// [`decode_batch`]'s batch as the data of one struct array of its columns,
/// the shape the Arrow C data interface hands over. A batch of flat columns
/// is built as that data straight from the body, without arrays (see
/// [`flat_batch::flat_data`](super::flat_batch::flat_data)), and checked as
/// strictly.
pub fn decode_batch_data(ipc_message: &[u8], body: &Buffer, schema: &SchemaRef) -> Result<ArrayData, CodecError> {
    let (message, header) = record_batch_message(ipc_message, body, schema)?;
    if header.compression().is_none() && is_flat(schema) {
        if let Some(data) = flat_data(body, &header, schema).map_err(bad_message)? {
            return Ok(data);
        }
        let batch = decode_flat(body, header, schema, &message.version()).map_err(bad_message)?;
        return Ok(StructArray::from(batch).into_data());
    }
    Ok(StructArray::from(decode_other(body, header, schema, &message.version())?).into_data())
}

fn bad_message(why: String) -> CodecError {
    CodecError::Invalid(format!("bad record batch message: {why}"))
}

/// A batch of nested (or compressed) columns, read and validated by arrow-ipc.
fn decode_other(
    body: &Buffer,
    header: arrow_ipc::RecordBatch<'_>,
    schema: &SchemaRef,
    version: &arrow_ipc::MetadataVersion,
) -> Result<RecordBatch, CodecError> {
    let as_bytes = strings_as_bytes(schema);
    let batch = read_nested(body, header, as_bytes, version).map_err(bad_message)?;
    texts_from_bytes(batch, schema).map_err(bad_message)
}

/// The message of a record batch of `schema` whose buffers all lie in `body`.
fn record_batch_message<'m>(
    ipc_message: &'m [u8],
    body: &Buffer,
    schema: &SchemaRef,
) -> Result<(arrow_ipc::Message<'m>, arrow_ipc::RecordBatch<'m>), CodecError> {
    let bad = bad_message;
    let message = arrow_ipc::root_as_message(ipc_message).map_err(|e| bad(e.to_string()))?;
    let header = message
        .header_as_record_batch()
        .ok_or_else(|| bad(format!("header is {:?}, not a record batch", message.header_type())))?;
    if usize::try_from(message.bodyLength()).ok() != Some(body.len()) {
        return Err(bad(format!(
            "message says {} body bytes, frame has {}",
            message.bodyLength(),
            body.len()
        )));
    }
    let nodes = header.nodes().map_or(0, |n| n.len());
    let expected: usize = schema.fields().iter().map(|f| node_count(f.data_type())).sum();
    if nodes != expected {
        return Err(bad(format!(
            "it has {nodes} field nodes, the stream's schema {} needs {expected}",
            describe(schema)
        )));
    }
    check_buffers_in_body(&header, body.len()).map_err(bad)?;
    Ok((message, header))
}

/// A batch with nested columns, read and validated by arrow-ipc. Some
/// malformed bodies make arrow's own validation assert (an offsets buffer
/// whose length is not a whole number of offsets, in a child column) rather
/// than return an error; a peer's bytes must never take the process down, so
/// such a panic is refused like any other bad batch.
fn read_nested(
    body: &Buffer,
    header: arrow_ipc::RecordBatch<'_>,
    schema: SchemaRef,
    version: &arrow_ipc::MetadataVersion,
) -> Result<RecordBatch, String> {
    let no_dictionaries = HashMap::new();
    let read = || arrow_ipc::reader::read_record_batch(body, header, schema, &no_dictionaries, None, version);
    match catch_silently(read) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(why) => Err(format!("its buffers do not fit its columns ({why})")),
    }
}

/// A batch of flat columns, decoded without arrow's validation and checked
/// by [`super::batch_checks`] instead, as strictly and in fewer instructions.
fn decode_flat(
    body: &Buffer,
    header: arrow_ipc::RecordBatch<'_>,
    schema: &SchemaRef,
    version: &arrow_ipc::MetadataVersion,
) -> Result<RecordBatch, String> {
    check_layout(&header, schema)?;
    let no_dictionaries = HashMap::new();
    let mut unchecked = UnsafeFlag::new();
    // SAFETY: `check_layout` showed every buffer long enough for the arrays
    // built over it (arrow aligns any that is not aligned), and nothing reads
    // through their offsets, bitmaps or text before `check_values` has shown
    // them to be what arrow's validation would have required.
    unsafe { unchecked.set(true) };
    let batch = RecordBatchDecoder::try_new(body, header, schema.clone(), &no_dictionaries, version)
        .and_then(|decoder| decoder.with_skip_validation(unchecked).read_record_batch())
        .map_err(|e| e.to_string())?;
    check_values(&batch)?;
    Ok(batch)
}

/// The stream's schema with its top-level string columns as binary ones,
/// which have the same buffers: arrow-ipc then checks their offsets but not
/// their text, which [`texts_from_bytes`] checks in one pass instead. Its
/// own check of each string, through a chain of iterator adapters, cost a
/// fifth of the CPU of a side receiving 65,536-row batches of short strings.
fn strings_as_bytes(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| is_text(f.data_type())) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            DataType::Utf8 => field.as_ref().clone().with_data_type(DataType::Binary),
            DataType::LargeUtf8 => field.as_ref().clone().with_data_type(DataType::LargeBinary),
            _ => field.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn is_text(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8)
}

/// `batch`, decoded with [`strings_as_bytes`] of `schema`, as a batch of
/// `schema` once its binary columns are shown to hold UTF-8 text.
fn texts_from_bytes(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if Arc::ptr_eq(batch.schema_ref(), schema) {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .enumerate()
        .map(|(index, (column, field))| {
            let text = match field.data_type() {
                DataType::Utf8 => text_column::<i32>(column),
                DataType::LargeUtf8 => text_column::<i64>(column),
                _ => return Ok(column.clone()),
            };
            text.map_err(|why| format!("column {index} ({:?}): {why}", field.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| e.to_string())
}

/// A binary column whose offsets arrow-ipc checked, as a string column.
fn text_column<O: OffsetSizeTrait>(column: &ArrayRef) -> Result<ArrayRef, String> {
    let bytes = column
        .as_binary_opt::<O>()
        .ok_or_else(|| format!("decoded as {}, not as binary", column.data_type()))?;
    check_text(bytes.value_offsets(), bytes.value_data())?;
    let (offsets, values, nulls) = bytes.clone().into_parts();
    // SAFETY: arrow-ipc validated the offsets (in bounds, in order) when it
    // built the binary column, and `check_text` showed that the bytes they
    // span are UTF-8 and that no offset falls inside a character: what a
    // string column needs beyond a binary one.
    Ok(Arc::new(unsafe {
        GenericStringArray::<O>::new_unchecked(offsets, values, nulls)
    }))
}

/// Field nodes an IPC record batch has for a column of `data_type`: one per
/// array, children included.
fn node_count(data_type: &DataType) -> usize {
    let children: usize = match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| node_count(f.data_type())).sum(),
        DataType::Union(fields, _) => fields.iter().map(|(_, f)| node_count(f.data_type())).sum(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _)
        | DataType::Map(f, _) => node_count(f.data_type()),
        DataType::RunEndEncoded(ends, values) => node_count(ends.data_type()) + node_count(values.data_type()),
        _ => 0,
    };
    1 + children
}

fn refuse_dictionaries(schema: &Schema) -> Result<(), CodecError> {
    match schema
        .fields()
        .iter()
        .find(|f| matches!(f.data_type(), DataType::Dictionary(..)))
    {
        Some(field) => Err(CodecError::Invalid(format!(
            "column {:?} is dictionary-encoded, which the executor protocol does not carry; decode it first",
            field.name()
        ))),
        None => Ok(()),
    }
}

fn check_types(actual: &Schema, expected: &Schema) -> Result<(), CodecError> {
    if actual.fields().len() == expected.fields().len()
        && actual
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, e)| a.data_type() == e.data_type())
    {
        return Ok(());
    }
    Err(CodecError::Invalid(format!(
        "schema mismatch: the stream declared {} but a batch has {}",
        describe(expected),
        describe(actual)
    )))
}

fn describe(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    format!("({})", fields.join(", "))
}

/// Wraps a schema for decoding, shared by every batch of a stream.
pub fn shared(schema: Schema) -> SchemaRef {
    Arc::new(schema)
}
