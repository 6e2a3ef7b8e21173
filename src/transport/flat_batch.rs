//! Record batches of flat columns written from their raw buffers.
//!
//! A sender that holds a batch as raw buffers (a pyarrow batch seen through
//! the C data interface) need not build arrow-rs arrays to send it. For flat
//! columns (see `batch_checks`) the IPC body is the columns' buffers in
//! order, each padded to 64 bytes, and the message lists where each buffer
//! lies and each column's length and null count. [`FlatEncoder`] writes that
//! message with a flatbuffer builder it keeps between batches: the message
//! arrow-ipc's encoder writes for the same batch, byte for byte, without the
//! arrays, the per-batch allocations and the stream framing that cost a
//! small batch most of its encoding.

use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer};
use arrow_data::{ArrayData, ArrayDataBuilder};
use arrow_ipc::{FieldNode, MessageBuilder, MessageHeader, MetadataVersion, RecordBatchBuilder};
use arrow_schema::{DataType, Schema};
use flatbuffers::FlatBufferBuilder;

pub use super::batch_checks::{FlatLayout, flat_layout, is_flat};
use super::batch_checks::{check_column, check_layout};
use super::codec::CodecError;

/// The alignment of each buffer in the body, as arrow-ipc's writer pads them.
const ALIGNMENT: usize = 64;
static PADDING: [u8; ALIGNMENT] = [0; ALIGNMENT];

/// One flat column's buffers, sliced to exactly what its rows span.
#[derive(Clone, Copy, Debug)]
pub struct FlatColumn<'a> {
    pub null_count: usize,
    /// The validity bitmap: empty when the column has no nulls.
    pub validity: &'a [u8],
    /// Fixed-width values, a bitmap of booleans, or offsets from zero.
    pub values: &'a [u8],
    /// What the offsets point into, for binary and string columns.
    pub data: Option<&'a [u8]>,
}

/// Writes the IPC messages of flat batches, reusing its builder.
pub struct FlatEncoder {
    builder: FlatBufferBuilder<'static>,
    nodes: Vec<FieldNode>,
    buffers: Vec<arrow_ipc::Buffer>,
}

impl Default for FlatEncoder {
    fn default() -> Self {
        Self {
            builder: FlatBufferBuilder::with_capacity(512),
            nodes: Vec::new(),
            buffers: Vec::new(),
        }
    }
}

impl FlatEncoder {
    /// The IPC message of a batch of `rows` rows of `columns`, which must be
    /// of `schema`'s types; the body, the buffers with the padding between
    /// them, is appended to `body`. A column whose buffers do not have the
    /// sizes its type and the rows give is refused: the message would lie
    /// about the body.
    pub fn encode<'a>(
        &mut self,
        schema: &Schema,
        rows: usize,
        columns: &[FlatColumn<'a>],
        body: &mut Vec<&'a [u8]>,
    ) -> Result<&[u8], CodecError> {
        if columns.len() != schema.fields().len() {
            return Err(CodecError::Invalid(format!(
                "{} columns for a schema of {}",
                columns.len(),
                schema.fields().len()
            )));
        }
        self.nodes.clear();
        self.buffers.clear();
        let mut offset = 0;
        for (index, (column, field)) in columns.iter().zip(schema.fields()).enumerate() {
            let layout = flat_layout(field.data_type())
                .ok_or_else(|| CodecError::Invalid(format!("column {index} ({}) is not flat", field.data_type())))?;
            check_sizes(layout, rows, column)
                .map_err(|why| CodecError::Invalid(format!("column {index} ({:?}): {why}", field.name())))?;
            self.nodes.push(FieldNode::new(rows as i64, column.null_count as i64));
            for part in [Some(column.validity), Some(column.values), column.data]
                .into_iter()
                .flatten()
            {
                self.buffers
                    .push(arrow_ipc::Buffer::new(offset as i64, part.len() as i64));
                let padding = &PADDING[..part.len().next_multiple_of(ALIGNMENT) - part.len()];
                body.extend([part, padding].into_iter().filter(|slice| !slice.is_empty()));
                offset += part.len() + padding.len();
            }
        }
        Ok(self.message(rows, offset))
    }

    /// The `Message` holding a `RecordBatch`, its fields added in the order
    /// arrow-ipc's writer adds them, which fixes the bytes.
    fn message(&mut self, rows: usize, body_len: usize) -> &[u8] {
        let builder = &mut self.builder;
        builder.reset();
        let buffers = builder.create_vector(&self.buffers);
        let nodes = builder.create_vector(&self.nodes);
        let mut batch = RecordBatchBuilder::new(builder);
        batch.add_length(rows as i64);
        batch.add_nodes(nodes);
        batch.add_buffers(buffers);
        let batch = batch.finish();
        let mut message = MessageBuilder::new(builder);
        message.add_version(MetadataVersion::V5);
        message.add_header_type(MessageHeader::RecordBatch);
        message.add_bodyLength(body_len as i64);
        message.add_header(batch.as_union_value());
        let message = message.finish();
        builder.finish(message, None);
        builder.finished_data()
    }
}

/// Each buffer as long as `rows` of this layout span, and a validity bitmap
/// exactly when there are nulls.
fn check_sizes(layout: FlatLayout, rows: usize, column: &FlatColumn<'_>) -> Result<(), String> {
    let bitmap = rows.div_ceil(8);
    if column.null_count > rows {
        return Err(format!("{} nulls in {rows} rows", column.null_count));
    }
    let validity = if column.null_count == 0 { 0 } else { bitmap };
    if column.validity.len() != validity {
        return Err(format!(
            "a validity bitmap of {} bytes, not {validity}",
            column.validity.len()
        ));
    }
    let (values, data) = (layout.values_len(rows), layout.has_data());
    if Some(column.values.len()) != values {
        return Err(format!(
            "a values buffer of {} bytes for {rows} rows",
            column.values.len()
        ));
    }
    if column.data.is_some() != data {
        return Err(format!(
            "a data buffer {}",
            if data { "missing" } else { "it cannot have" }
        ));
    }
    Ok(())
}

/// A received batch of flat columns (`schema`'s, whose count of field
/// nodes the caller has matched) as the data of one struct array of its
/// columns, each buffer a slice of `body`, aligned by a copy where the peer
/// did not align it. It promises what `decode_batch` promises: the sizes
/// `check_layout` checks, then each column's null count against its bitmap,
/// its nullability, and offsets and text. None for a batch of no rows whose
/// string columns have no offsets at all (arrow allows it), which the
/// arrays' decoder builds instead.
pub fn flat_data(
    body: &Buffer,
    header: &arrow_ipc::RecordBatch<'_>,
    schema: &Schema,
) -> Result<Option<ArrayData>, String> {
    check_layout(header, schema)?;
    let rows = usize::try_from(header.length()).map_err(|_| "a negative row count")?;
    let nodes = header.nodes().ok_or("no field nodes")?;
    let mut buffers = header.buffers().ok_or("no buffer list")?.iter();
    let mut children = Vec::with_capacity(schema.fields().len());
    for (index, (field, node)) in schema.fields().iter().zip(nodes.iter()).enumerate() {
        let layout = flat_layout(field.data_type()).ok_or_else(|| format!("column {index} is not flat"))?;
        // `check_layout` showed every buffer there and long enough, and
        // `check_buffers_in_body` that it lies inside the body.
        let mut next = |len: usize| {
            let buffer = buffers
                .next()
                .ok_or("the message has fewer buffers than its columns need")?;
            Ok::<_, String>(body.slice_with_length(buffer.offset() as usize, len.min(buffer.length() as usize)))
        };
        let null_count = node.null_count() as usize;
        let validity = next(rows.div_ceil(8))?;
        let values_len = layout.values_len(rows).ok_or("more rows than can be addressed")?;
        let values = next(values_len)?;
        if values.len() < values_len {
            return Ok(None); // no offsets for no rows
        }
        let mut builder = ArrayDataBuilder::new(field.data_type().clone())
            .len(rows)
            .add_buffer(values);
        if layout.has_data() {
            builder = builder.add_buffer(next(usize::MAX)?);
        }
        if null_count > 0 {
            // SAFETY: the count is checked against the bitmap below, before
            // anything reads the column.
            let nulls = unsafe { NullBuffer::new_unchecked(BooleanBuffer::new(validity, 0, rows), null_count) };
            builder = builder.nulls(Some(nulls));
        }
        // SAFETY: every buffer is as long as `rows` of the column's type
        // need (`check_layout`, and the slicing above), aligned by
        // `align_buffers`; nothing reads its bitmap, offsets or text before
        // `check_column` has.
        let column = unsafe { builder.align_buffers(true).build_unchecked() };
        check_column(&column, null_count, field.is_nullable())
            .map_err(|why| format!("column {index} ({:?}): {why}", field.name()))?;
        children.push(column);
    }
    let batch = ArrayDataBuilder::new(DataType::Struct(schema.fields().clone()))
        .len(rows)
        .child_data(children);
    // SAFETY: a struct of no nulls over children of `rows` rows, each checked.
    Ok(Some(unsafe { batch.build_unchecked() }))
}

#[cfg(test)]
#[path = "flat_batch_tests.rs"]
mod tests;
