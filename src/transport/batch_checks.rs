//! What stands between a peer's record batch and the arrays a receiver hands
//! on (to Python through pyarrow, or to the JVM).
//!
//! Batches whose columns are all flat (fixed-width values, booleans, binary,
//! strings) are decoded by arrow-ipc without its own validation, whose walk
//! of every offset through a chain of iterator adapters cost more than the
//! rest of receiving 65,536 short strings. These checks make the same
//! promises in passes that compile to plain loops, in two halves:
//! [`check_layout`] reads only the IPC message, before any array exists, and
//! refuses every size that building the arrays would otherwise assert on (a
//! panic); [`check_values`] reads the decoded arrays before anyone else does:
//! null counts against their bitmaps, offsets, text. Other batches keep
//! arrow's validation; [`check_buffers_in_body`] serves both.

use arrow_array::cast::AsArray;
use arrow_array::{Array, OffsetSizeTrait, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_data::ArrayData;
use arrow_schema::{DataType, Schema};

/// How a flat column lays out its values after the validity bitmap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FlatLayout {
    /// One buffer of fixed-width values, this many bytes each.
    Fixed(usize),
    /// One buffer of bits (booleans).
    Bits,
    /// Offsets of this many bytes each, then the values they point into.
    Variable(usize),
}

impl FlatLayout {
    /// Bytes `rows` rows need in the buffer after the validity bitmap: their
    /// values, a bitmap of booleans, or `rows + 1` offsets; None past what
    /// can be addressed.
    pub fn values_len(self, rows: usize) -> Option<usize> {
        match self {
            Self::Fixed(width) => rows.checked_mul(width),
            Self::Bits => Some(rows.div_ceil(8)),
            Self::Variable(width) => rows.checked_add(1)?.checked_mul(width),
        }
    }

    /// Whether a buffer of the bytes the offsets point into follows.
    pub fn has_data(self) -> bool {
        matches!(self, Self::Variable(_))
    }
}

pub fn flat_layout(data_type: &DataType) -> Option<FlatLayout> {
    match data_type {
        DataType::Boolean => Some(FlatLayout::Bits),
        DataType::Binary | DataType::Utf8 => Some(FlatLayout::Variable(4)),
        DataType::LargeBinary | DataType::LargeUtf8 => Some(FlatLayout::Variable(8)),
        other if other.is_primitive() => other.primitive_width().map(FlatLayout::Fixed),
        _ => None,
    }
}

/// Whether every column of `schema` is one these checks cover.
pub fn is_flat(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .all(|field| flat_layout(field.data_type()).is_some())
}

/// Every buffer the message names lies inside the body: arrow-ipc slices
/// them out of it with an assertion, which would otherwise be a panic.
pub(super) fn check_buffers_in_body(header: &arrow_ipc::RecordBatch<'_>, body_len: usize) -> Result<(), String> {
    let Some(buffers) = header.buffers() else {
        return Ok(());
    };
    for (index, buffer) in buffers.iter().enumerate() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = offset.checked_add(length).and_then(|end| usize::try_from(end).ok());
        if offset < 0 || length < 0 || end.is_none_or(|end| end > body_len) {
            return Err(format!(
                "buffer {index} (at {offset}, {length} bytes) lies outside the {body_len}-byte body"
            ));
        }
    }
    Ok(())
}

/// The sizes the message gives a batch of flat columns (`schema`, whose
/// field count the caller has matched with the message's nodes): every
/// column as long as the batch, null counts within it, and each buffer at
/// least as long as the column's rows need.
pub(super) fn check_layout(header: &arrow_ipc::RecordBatch<'_>, schema: &Schema) -> Result<(), String> {
    let rows = usize::try_from(header.length()).map_err(|_| format!("negative row count {}", header.length()))?;
    let nodes = header.nodes().ok_or("no field nodes")?;
    let mut buffers = header.buffers().ok_or("no buffer list")?.iter().map(|b| b.length());
    for (index, (field, node)) in schema.fields().iter().zip(nodes.iter()).enumerate() {
        let layout = flat_layout(field.data_type()).ok_or_else(|| format!("column {index} is not flat"))?;
        check_column_layout(layout, node, rows, &mut buffers)
            .map_err(|why| format!("column {index} ({:?}): {why}", field.name()))?;
    }
    Ok(())
}

fn check_column_layout(
    layout: FlatLayout,
    node: &arrow_ipc::FieldNode,
    rows: usize,
    buffer_lengths: &mut impl Iterator<Item = i64>,
) -> Result<(), String> {
    if usize::try_from(node.length()).ok() != Some(rows) {
        return Err(format!("it has {} rows, the batch {rows}", node.length()));
    }
    if !(0..=node.length()).contains(&node.null_count()) {
        return Err(format!("null count {} for {rows} rows", node.null_count()));
    }
    let mut next_len = || {
        buffer_lengths
            .next()
            .map(|length| usize::try_from(length).unwrap_or(0))
            .ok_or("the message has fewer buffers than its columns need")
    };
    let bitmap_len = rows.div_ceil(8);
    let validity = next_len()?;
    if node.null_count() > 0 && validity < bitmap_len {
        return Err(format!(
            "validity bitmap of {validity} bytes, {rows} rows need {bitmap_len}"
        ));
    }
    let what = match layout {
        FlatLayout::Fixed(_) => "values",
        FlatLayout::Bits => "values bitmap",
        FlatLayout::Variable(_) => "offsets",
    };
    let needed = layout.values_len(rows);
    let have = next_len()?;
    let enough = match (layout, needed) {
        // No rows may come without any offset at all, as arrow allows.
        (FlatLayout::Variable(_), _) if rows == 0 && have == 0 => true,
        (_, Some(needed)) => have >= needed,
        (_, None) => false,
    };
    if !enough {
        let needed = needed.map_or_else(|| "more than can be addressed".to_owned(), |n| n.to_string());
        return Err(format!("{what} buffer of {have} bytes, {rows} rows need {needed}"));
    }
    if layout.has_data() {
        next_len()?;
    }
    Ok(())
}

/// What a flat batch decoded without arrow's validation must be before it
/// leaves the decoder: each null count the one its bitmap shows, offsets
/// from zero up, in order and inside the values, and text UTF-8.
pub(super) fn check_values(batch: &RecordBatch) -> Result<(), String> {
    for (index, (column, field)) in batch.columns().iter().zip(batch.schema_ref().fields()).enumerate() {
        check_column_values(column.as_ref())
            .and_then(|()| check_nullability(column.null_count(), field.is_nullable()))
            .map_err(|why| format!("column {index} ({:?}): {why}", field.name()))?;
    }
    Ok(())
}

/// What arrow's checked constructor of a record batch also refuses.
fn check_nullability(null_count: usize, nullable: bool) -> Result<(), String> {
    match null_count {
        0 => Ok(()),
        _ if nullable => Ok(()),
        nulls => Err(format!("{nulls} nulls in a column the schema declares non-nullable")),
    }
}

/// [`check_values`] of one column built as data, without an array (see
/// `flat_batch::flat_data`): its bitmap shows `null_count` nulls, which its
/// field allows, and its offsets and text are sound.
pub(super) fn check_column(column: &ArrayData, null_count: usize, nullable: bool) -> Result<(), String> {
    check_null_count(column.nulls())?;
    check_column_data(column)?;
    check_nullability(null_count, nullable)
}

fn check_column_data(column: &ArrayData) -> Result<(), String> {
    let buffers = column.buffers();
    match column.data_type() {
        DataType::Binary => check_offsets(buffers[0].typed_data::<i32>(), buffers[1].len()),
        DataType::LargeBinary => check_offsets(buffers[0].typed_data::<i64>(), buffers[1].len()),
        DataType::Utf8 => {
            let offsets = buffers[0].typed_data::<i32>();
            check_offsets(offsets, buffers[1].len())?;
            check_text(offsets, buffers[1].as_slice())
        }
        DataType::LargeUtf8 => {
            let offsets = buffers[0].typed_data::<i64>();
            check_offsets(offsets, buffers[1].len())?;
            check_text(offsets, buffers[1].as_slice())
        }
        _ => Ok(()),
    }
}

/// The null count a column was given is the one its bitmap shows.
fn check_null_count(nulls: Option<&NullBuffer>) -> Result<(), String> {
    let Some(nulls) = nulls else {
        return Ok(());
    };
    let counted = nulls.len() - nulls.inner().count_set_bits();
    if counted != nulls.null_count() {
        return Err(format!(
            "the message says {} nulls, the validity bitmap has {counted}",
            nulls.null_count()
        ));
    }
    Ok(())
}

fn check_column_values(column: &dyn Array) -> Result<(), String> {
    check_null_count(column.nulls())?;
    match column.data_type() {
        DataType::Binary => check_offsets(
            column.as_binary::<i32>().value_offsets(),
            column.as_binary::<i32>().values().len(),
        ),
        DataType::LargeBinary => check_offsets(
            column.as_binary::<i64>().value_offsets(),
            column.as_binary::<i64>().values().len(),
        ),
        DataType::Utf8 => {
            let text = column.as_string::<i32>();
            check_offsets(text.value_offsets(), text.values().len())?;
            check_text(text.value_offsets(), text.values())
        }
        DataType::LargeUtf8 => {
            let text = column.as_string::<i64>();
            check_offsets(text.value_offsets(), text.values().len())?;
            check_text(text.value_offsets(), text.values())
        }
        _ => Ok(()),
    }
}

/// Offsets start at zero or later, never go down, and end inside the values.
pub(super) fn check_offsets<O: OffsetSizeTrait>(offsets: &[O], values_len: usize) -> Result<(), String> {
    let (Some(&first), Some(&last)) = (offsets.first(), offsets.last()) else {
        return Ok(());
    };
    if first < O::usize_as(0) {
        return Err(format!("offset 0 is negative ({first:?})"));
    }
    if let Some(at) = first_descent(offsets) {
        return Err(format!(
            "non-monotonic offsets: offset {at} ({:?}) is below offset {} ({:?})",
            offsets[at],
            at - 1,
            offsets[at - 1]
        ));
    }
    if last.as_usize() > values_len {
        return Err(format!(
            "the last offset ({last:?}) is past the {values_len} bytes of values"
        ));
    }
    Ok(())
}

/// The index of the first offset below the one before it. Each run of
/// pairs is tested whole, without stopping at a descent, so that the test
/// vectorizes (stopping early made it about four instructions an offset);
/// only a run that has one is searched for where.
fn first_descent<O: OffsetSizeTrait>(offsets: &[O]) -> Option<usize> {
    const RUN: usize = 1024;
    let mut start = 0;
    while start + 1 < offsets.len() {
        let end = (start + RUN + 1).min(offsets.len());
        let run = &offsets[start..end];
        let pairs = || run.iter().zip(&run[1..]);
        if pairs().fold(false, |seen, (before, after)| seen | (before > after)) {
            return pairs()
                .position(|(before, after)| before > after)
                .map(|index| start + index + 1);
        }
        start = end - 1;
    }
    None
}

/// Whether `values` holds UTF-8 from the first to the last of `offsets`, and
/// each offset is on a character's boundary: the same as arrow's own check,
/// in one pass over the bytes and, only when they are not all ASCII (where
/// every byte is a boundary), one over the offsets.
pub(super) fn check_text<O: OffsetSizeTrait>(offsets: &[O], values: &[u8]) -> Result<(), String> {
    let (Some(first), Some(last)) = (offsets.first(), offsets.last()) else {
        return Ok(());
    };
    let (first, last) = (first.as_usize(), last.as_usize());
    let span = values.get(first..last).ok_or_else(|| {
        format!(
            "offsets {first}..{last} are outside the {} bytes of values",
            values.len()
        )
    })?;
    if span.is_ascii() {
        return Ok(());
    }
    if let Err(error) = std::str::from_utf8(span) {
        return Err(format!("invalid UTF-8 at byte {}", first + error.valid_up_to()));
    }
    // A string may not start (nor its predecessor end) inside a character;
    // the last offset, the end of the span, is a boundary whatever it is.
    let inside_a_character = |offset: &O| {
        let at = offset.as_usize();
        at < last && values.get(at).is_some_and(|byte| is_continuation_byte(*byte))
    };
    match offsets.iter().position(inside_a_character) {
        Some(index) => Err(format!("offset {index} falls inside a UTF-8 character")),
        None => Ok(()),
    }
}

/// A byte that continues a multi-byte UTF-8 character (0b10xx_xxxx).
fn is_continuation_byte(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

#[cfg(test)]
#[path = "batch_checks_tests.rs"]
mod tests;
