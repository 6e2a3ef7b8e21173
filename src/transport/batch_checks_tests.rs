//! Every check `batch_checks` makes in place of arrow's validation, each
//! shown to refuse its malformed batch with a clear error (never a panic),
//! and flat batches of every covered type shown to round trip.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int64Array,
    LargeBinaryArray, LargeStringArray, ListArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt16Array,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};

use crate::transport::batch::{decode_batch_data, encode_batch};
use crate::transport::codec::CodecError;

/// `decode_batch`, checked against `decode_batch_data` (which builds a batch
/// of flat columns as data, without arrays): both must accept the same
/// batches, with the same columns, and refuse the same ones with the same error.
fn decode_batch(message: &[u8], body: &Buffer, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch, CodecError> {
    let batch = crate::transport::batch::decode_batch(message, body, schema);
    let data = decode_batch_data(message, body, schema);
    match (&batch, &data) {
        (Ok(batch), Ok(data)) => {
            assert_eq!(
                &arrow_array::Array::into_data(arrow_array::StructArray::from(batch.clone())),
                data
            )
        }
        (Err(refused), Err(also)) => assert_eq!(refused.to_string(), also.to_string()),
        _ => panic!("decode_batch gave {batch:?}, decode_batch_data {data:?}"),
    }
    batch
}

/// A field of one of the fixed-size structs a record batch message lists:
/// a field node (row count, null count) or a buffer (offset, length).
#[derive(Clone, Copy)]
enum Patch {
    NodeLength(usize),
    NodeNulls(usize),
    BufferOffset(usize),
    BufferLength(usize),
}

/// `message` with one field of its nodes or buffers set to `value`, as a
/// buggy or hostile peer might send it. Both are vectors of two
/// little-endian `i64`s per entry inside the flatbuffer.
fn patched(message: &[u8], patch: Patch, value: i64) -> Vec<u8> {
    let parsed = arrow_ipc::root_as_message(message).unwrap();
    let header = parsed.header_as_record_batch().unwrap();
    let (vector, index, field) = match patch {
        Patch::NodeLength(i) => (header.nodes().unwrap().bytes(), i, 0),
        Patch::NodeNulls(i) => (header.nodes().unwrap().bytes(), i, 1),
        Patch::BufferOffset(i) => (header.buffers().unwrap().bytes(), i, 0),
        Patch::BufferLength(i) => (header.buffers().unwrap().bytes(), i, 1),
    };
    let at = vector.as_ptr() as usize - message.as_ptr() as usize + index * 16 + field * 8;
    let mut bytes = message.to_vec();
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
    bytes
}

/// Three rows: an int64 column with one null (buffers 0 and 1, node 0) and
/// a string column (buffers 2, 3 and 4, node 1).
fn ids_and_names() -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
    let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc"]));
    RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap()
}

fn decode_error_after(batch: &RecordBatch, patch: Patch, value: i64) -> String {
    let encoded = encode_batch(batch, &batch.schema()).unwrap();
    let message = patched(&encoded.ipc_message, patch, value);
    let body = Buffer::from_vec(encoded.body);
    decode_batch(&message, &body, &batch.schema()).unwrap_err().to_string()
}

fn decode_error(batch: &RecordBatch) -> String {
    let encoded = encode_batch(batch, &batch.schema()).unwrap();
    let body = Buffer::from_vec(encoded.body);
    decode_batch(&encoded.ipc_message, &body, &batch.schema())
        .unwrap_err()
        .to_string()
}

fn assert_says(err: &str, why: &str) {
    assert!(err.contains(why), "{err:?} should say {why:?}");
}

#[test]
fn buffers_outside_the_body_are_refused() {
    let batch = ids_and_names();
    let body_len = encode_batch(&batch, &batch.schema()).unwrap().body.len() as i64;
    for (patch, value) in [
        (Patch::BufferOffset(4), body_len),
        (Patch::BufferOffset(1), -8),
        (Patch::BufferLength(1), -1),
        (Patch::BufferLength(4), body_len + 1),
        (Patch::BufferOffset(3), i64::MAX),
    ] {
        assert_says(&decode_error_after(&batch, patch, value), "lies outside the");
    }
}

#[test]
fn buffers_outside_the_body_are_refused_for_nested_columns_too() {
    let lists = vec![Some(vec![Some(1), None]), None, Some(vec![])];
    let nested: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(lists));
    let batch = RecordBatch::try_from_iter([("l", nested)]).unwrap();
    let err = decode_error_after(&batch, Patch::BufferLength(1), 1 << 40);
    assert_says(&err, "lies outside the");
}

/// arrow's validation asserts on an offsets buffer that is not a whole
/// number of offsets; decoding refuses the batch instead of panicking.
#[test]
fn offsets_of_a_nested_column_that_are_not_whole_offsets_are_refused() {
    let lists = vec![Some(vec![Some(1), None]), None, Some(vec![])];
    let nested: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(lists));
    let batch = RecordBatch::try_from_iter([("l", nested)]).unwrap();
    let err = decode_error_after(&batch, Patch::BufferLength(1), 17);
    assert_says(&err, "its buffers do not fit its columns");
}

#[test]
fn columns_of_another_length_than_the_batch_are_refused() {
    let batch = ids_and_names();
    assert_says(
        &decode_error_after(&batch, Patch::NodeLength(1), 2),
        "column 1 (\"name\"): it has 2 rows, the batch 3",
    );
    assert_says(&decode_error_after(&batch, Patch::NodeLength(0), -1), "it has -1 rows");
    assert_says(
        &decode_error_after(&batch, Patch::NodeLength(0), 1 << 40),
        "rows, the batch 3",
    );
}

#[test]
fn null_counts_outside_the_column_or_unlike_the_bitmap_are_refused() {
    let batch = ids_and_names();
    assert_says(
        &decode_error_after(&batch, Patch::NodeNulls(0), 4),
        "null count 4 for 3 rows",
    );
    assert_says(&decode_error_after(&batch, Patch::NodeNulls(0), -1), "null count -1");
    assert_says(
        &decode_error_after(&batch, Patch::NodeNulls(0), 2),
        "the message says 2 nulls, the validity bitmap has 1",
    );
    // A bitmap with no null at all, under a count that says one.
    assert_says(
        &decode_error_after(&batch, Patch::NodeNulls(1), 1),
        "validity bitmap of 0 bytes, 3 rows need 1",
    );
}

#[test]
fn short_validity_value_and_offset_buffers_are_refused() {
    let batch = ids_and_names();
    assert_says(
        &decode_error_after(&batch, Patch::BufferLength(0), 0),
        "validity bitmap of 0 bytes, 3 rows need 1",
    );
    assert_says(
        &decode_error_after(&batch, Patch::BufferLength(1), 16),
        "values buffer of 16 bytes, 3 rows need 24",
    );
    assert_says(
        &decode_error_after(&batch, Patch::BufferLength(3), 8),
        "offsets buffer of 8 bytes, 3 rows need 16",
    );
    let flags: ArrayRef = Arc::new(BooleanArray::from(vec![true; 20]));
    let flags = RecordBatch::try_from_iter([("f", flags)]).unwrap();
    assert_says(
        &decode_error_after(&flags, Patch::BufferLength(1), 2),
        "values bitmap buffer of 2 bytes, 20 rows need 3",
    );
}

/// A binary or string column built without checks, as a peer might send it.
fn unchecked_bytes<O: arrow_array::OffsetSizeTrait>(offsets: Vec<O>, values: &[u8], text: bool) -> RecordBatch {
    // SAFETY: only encoded, which copies bytes and reads no value.
    let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) };
    let values = Buffer::from(values);
    let array: ArrayRef = if text {
        Arc::new(unsafe { arrow_array::GenericStringArray::<O>::new_unchecked(offsets, values, None) })
    } else {
        Arc::new(unsafe { arrow_array::GenericBinaryArray::<O>::new_unchecked(offsets, values, None) })
    };
    RecordBatch::try_from_iter([("b", array)]).unwrap()
}

/// The error decoding `batch` gives once its first offset (in the body, in
/// buffer 1) is `first`; a little-endian `i64`'s low half is the `i32`.
fn decode_error_with_first_offset(batch: &RecordBatch, width: usize, first: i64) -> String {
    let encoded = encode_batch(batch, &batch.schema()).unwrap();
    let header = arrow_ipc::root_as_message(&encoded.ipc_message).unwrap();
    let at = header
        .header_as_record_batch()
        .unwrap()
        .buffers()
        .unwrap()
        .get(1)
        .offset() as usize;
    let mut body = encoded.body.clone();
    body[at..at + width].copy_from_slice(&first.to_le_bytes()[..width]);
    decode_batch(&encoded.ipc_message, &Buffer::from_vec(body), &batch.schema())
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_offsets_are_refused_in_binary_and_string_columns_of_either_width() {
    for text in [false, true] {
        let cases = [
            (
                unchecked_bytes(vec![0i32, 3, 1, 4], b"abcd", text),
                "offset 2 (1) is below offset 1 (3)",
            ),
            (
                unchecked_bytes(vec![0i64, 3, 1, 4], b"abcd", text),
                "non-monotonic offsets",
            ),
        ];
        for (batch, why) in cases {
            assert_says(&decode_error(&batch), why);
        }
        for (batch, width) in [
            (unchecked_bytes(vec![0i32, 2, 4], b"abcd", text), 4),
            (unchecked_bytes(vec![0i64, 2, 4], b"abcd", text), 8),
        ] {
            // Buffer 2 holds the values: three bytes leave the last offset past them.
            assert_says(
                &decode_error_after(&batch, Patch::BufferLength(2), 3),
                "the last offset (4) is past the 3 bytes of values",
            );
            assert_says(
                &decode_error_with_first_offset(&batch, width, -1),
                "offset 0 is negative (-1)",
            );
            assert_says(
                &decode_error_with_first_offset(&batch, width, 3),
                "offset 1 (2) is below offset 0 (3)",
            );
        }
    }
    // A descent far into a long column, past the first run of pairs tested together.
    let mut offsets: Vec<i32> = (0..5000).collect();
    offsets[4321] = 4000;
    let values = vec![b'x'; 4999];
    assert_says(
        &decode_error(&unchecked_bytes(offsets, &values, true)),
        "offset 4321 (4000) is below offset 4320 (4320)",
    );
}

#[test]
fn text_that_is_not_utf8_is_refused_but_the_same_bytes_pass_as_binary() {
    assert_says(
        &decode_error(&unchecked_bytes(vec![0i32, 2, 4], b"ab\xff\xfe", true)),
        "invalid UTF-8 at byte 2",
    );
    assert_says(
        &decode_error(&unchecked_bytes(vec![0i64, 1, 3], "éa".as_bytes(), true)),
        "offset 1 falls inside a UTF-8 character",
    );
    let binary = unchecked_bytes(vec![0i32, 2, 4], b"ab\xff\xfe", false);
    let encoded = encode_batch(&binary, &binary.schema()).unwrap();
    let decoded = decode_batch(&encoded.ipc_message, &Buffer::from_vec(encoded.body), &binary.schema()).unwrap();
    assert_eq!(decoded, binary);
}

/// One column of each kind of flat type, with nulls.
fn every_flat_kind() -> RecordBatch {
    let rows = 37;
    let every_third = |i: usize| !i.is_multiple_of(3);
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "i8",
            Arc::new(Int8Array::from_iter(
                (0..rows).map(|i| every_third(i).then_some(i as i8)),
            )),
        ),
        (
            "u16",
            Arc::new(UInt16Array::from_iter_values((0..rows).map(|i| i as u16))),
        ),
        (
            "f64",
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| every_third(i).then_some(i as f64 / 3.0)),
            )),
        ),
        (
            "bool",
            Arc::new(BooleanArray::from_iter(
                (0..rows).map(|i| every_third(i).then_some(i % 2 == 0)),
            )),
        ),
        (
            "date",
            Arc::new(Date32Array::from_iter_values((0..rows).map(|i| i as i32))),
        ),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from_iter_values((0..rows).map(|i| i as i64)).with_timezone("UTC")),
        ),
        (
            "dec",
            Arc::new(
                Decimal128Array::from_iter((0..rows).map(|i| every_third(i).then_some(i as i128 * 1000)))
                    .with_precision_and_scale(20, 3)
                    .unwrap(),
            ),
        ),
        (
            "bin",
            Arc::new(BinaryArray::from_iter(
                (0..rows).map(|i| every_third(i).then(|| vec![i as u8; i % 5])),
            )),
        ),
        (
            "lbin",
            Arc::new(LargeBinaryArray::from_iter_values((0..rows).map(|i| vec![0xff; i % 4]))),
        ),
        (
            "s",
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| every_third(i).then(|| "é".repeat(i % 4))),
            )),
        ),
        (
            "ls",
            Arc::new(LargeStringArray::from_iter_values((0..rows).map(|i| "x".repeat(i % 7)))),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn flat_batches_of_every_kind_round_trip_whole_sliced_and_empty() {
    let batch = every_flat_kind();
    for batch in [batch.clone(), batch.slice(5, 20), batch.slice(37, 0)] {
        let encoded = encode_batch(&batch, &batch.schema()).unwrap();
        let decoded = decode_batch(&encoded.ipc_message, &Buffer::from_vec(encoded.body), &batch.schema()).unwrap();
        assert_eq!(decoded, batch);
        for column in decoded.columns() {
            column.to_data().validate_full().unwrap();
        }
    }
}

#[test]
fn nulls_in_a_column_declared_non_nullable_are_refused() {
    let batch = ids_and_names();
    let encoded = encode_batch(&batch, &batch.schema()).unwrap();
    let strict = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("name", arrow_schema::DataType::Utf8, false),
    ]));
    let err = decode_batch(&encoded.ipc_message, &Buffer::from_vec(encoded.body), &strict)
        .unwrap_err()
        .to_string();
    assert_says(
        &err,
        "column 0 (\"id\"): 1 nulls in a column the schema declares non-nullable",
    );
}
