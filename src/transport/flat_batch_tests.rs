//! The flat encoder writes what arrow-ipc's encoder writes for the same
//! batch, and refuses columns whose buffers do not match their type.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, RecordBatch, StringArray,
};
use arrow_buffer::Buffer;

use super::*;
use crate::transport::batch::{BatchEncoder, decode_batch, shared};

/// The columns of `batch`, whose arrays start at offset zero, as the flat
/// encoder takes them.
fn columns_of(batch: &RecordBatch) -> Vec<FlatColumn<'_>> {
    batch
        .columns()
        .iter()
        .map(|column| column_of(column.as_ref()))
        .collect()
}

fn column_of(column: &dyn Array) -> FlatColumn<'_> {
    let rows = column.len();
    let validity = match column.nulls() {
        Some(nulls) if nulls.null_count() > 0 => &nulls.buffer().as_slice()[..rows.div_ceil(8)],
        _ => &[],
    };
    let (values, data): (&[u8], Option<&[u8]>) = if let Some(text) = column.as_string_opt::<i32>() {
        let end = text.value_offsets()[rows] as usize;
        (
            text.offsets().inner().inner().as_slice(),
            Some(&text.values().as_slice()[..end]),
        )
    } else if let Some(text) = column.as_string_opt::<i64>() {
        let end = text.value_offsets()[rows] as usize;
        (
            text.offsets().inner().inner().as_slice(),
            Some(&text.values().as_slice()[..end]),
        )
    } else if let Some(bits) = column.as_boolean_opt() {
        (&bits.values().inner().as_slice()[..rows.div_ceil(8)], None)
    } else if let Some(ints) = column.as_primitive_opt::<Int64Type>() {
        (ints.values().inner().as_slice(), None)
    } else {
        (column.as_primitive::<Float64Type>().values().inner().as_slice(), None)
    };
    FlatColumn {
        null_count: column.null_count(),
        validity,
        values,
        data,
    }
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

fn samples() -> Vec<RecordBatch> {
    vec![
        batch(vec![("x", Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef)]),
        batch(vec![
            (
                "x",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            ),
            ("s", Arc::new(StringArray::from(vec![Some("a"), None, Some("ccc")]))),
            ("b", Arc::new(BooleanArray::from(vec![Some(true), Some(false), None]))),
            ("f", Arc::new(Float64Array::from(vec![1.5, 2.5, -0.0]))),
            ("l", Arc::new(LargeStringArray::from(vec!["é", "", "long enough text"]))),
        ]),
        batch(vec![
            ("s", Arc::new(StringArray::from(Vec::<&str>::new())) as ArrayRef),
            ("x", Arc::new(Int64Array::from(Vec::<i64>::new()))),
        ]),
        batch(vec![(
            "n",
            Arc::new(Int64Array::from(vec![None::<i64>; 17])) as ArrayRef,
        )]),
    ]
}

/// Body parts joined, as the socket receives them.
fn joined(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn writes_the_message_and_body_arrow_ipc_writes() {
    for sample in samples() {
        let schema = sample.schema();
        let mut ours = FlatEncoder::default();
        let mut body = Vec::new();
        let message = ours
            .encode(&schema, sample.num_rows(), &columns_of(&sample), &mut body)
            .unwrap()
            .to_vec();
        let theirs = BatchEncoder::new(schema.clone()).unwrap().encode(&sample).unwrap();
        if sample.num_rows() > 0 {
            // arrow-ipc sends no offsets at all for a column of no rows, this
            // encoder the one offset an empty string column has: both decode.
            assert_eq!(message, theirs.ipc_message.as_slice(), "{schema:?}");
            assert_eq!(joined(&body), joined(&theirs.body_slices()), "{schema:?}");
        }
        let decoded = decode_batch(
            &message,
            &Buffer::from_vec(joined(&body)),
            &shared(schema.as_ref().clone()),
        )
        .unwrap();
        assert_eq!(decoded, sample);
    }
}

#[test]
fn reuses_its_builder_for_batches_of_any_size() {
    let mut encoder = FlatEncoder::default();
    for rows in [1000usize, 3, 70_000, 0, 5] {
        let sample = batch(vec![(
            "s",
            Arc::new(StringArray::from_iter_values((0..rows).map(|i| i.to_string()))) as ArrayRef,
        )]);
        let mut body = Vec::new();
        let message = encoder
            .encode(&sample.schema(), rows, &columns_of(&sample), &mut body)
            .unwrap()
            .to_vec();
        let decoded = decode_batch(&message, &Buffer::from_vec(joined(&body)), &sample.schema()).unwrap();
        assert_eq!(decoded, sample);
    }
}

#[test]
fn pads_every_buffer_to_64_bytes() {
    let sample = &samples()[1];
    let mut body = Vec::new();
    let message = FlatEncoder::default()
        .encode(&sample.schema(), 3, &columns_of(sample), &mut body)
        .unwrap()
        .to_vec();
    let header = arrow_ipc::root_as_message(&message)
        .unwrap()
        .header_as_record_batch()
        .unwrap();
    for buffer in header.buffers().unwrap() {
        assert_eq!(buffer.offset() % 64, 0);
    }
    assert_eq!(joined(&body).len() % 64, 0);
}

#[test]
fn refuses_buffers_that_do_not_fit_the_column() {
    let sample = &samples()[1];
    let schema = sample.schema();
    let good = columns_of(sample);
    let bits = [0u8; 1];
    let cases: Vec<(usize, FlatColumn<'_>, &str)> = vec![
        (
            0,
            FlatColumn {
                values: &good[0].values[..16],
                ..good[0]
            },
            "values buffer of 16 bytes",
        ),
        (
            0,
            FlatColumn {
                validity: &[],
                ..good[0]
            },
            "validity bitmap of 0 bytes",
        ),
        (
            3,
            FlatColumn {
                validity: &bits,
                null_count: 0,
                ..good[3]
            },
            "validity bitmap of 1 bytes",
        ),
        (
            3,
            FlatColumn {
                null_count: 4,
                ..good[3]
            },
            "4 nulls in 3 rows",
        ),
        (1, FlatColumn { data: None, ..good[1] }, "data buffer missing"),
        (
            0,
            FlatColumn {
                data: Some(&bits),
                ..good[0]
            },
            "data buffer it cannot have",
        ),
    ];
    for (index, column, why) in cases {
        let mut columns = good.clone();
        columns[index] = column;
        let error = FlatEncoder::default()
            .encode(&schema, 3, &columns, &mut Vec::new())
            .unwrap_err();
        assert!(error.to_string().contains(why), "{error} lacks {why:?}");
    }
    let error = FlatEncoder::default()
        .encode(&schema, 3, &good[..2], &mut Vec::new())
        .unwrap_err();
    assert!(error.to_string().contains("2 columns for a schema of 5"), "{error}");
}

#[test]
fn refuses_a_schema_that_is_not_flat() {
    let list =
        arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let sample = batch(vec![("l", Arc::new(list) as ArrayRef)]);
    let column = FlatColumn {
        null_count: 0,
        validity: &[],
        values: &[0; 8],
        data: None,
    };
    let error = FlatEncoder::default()
        .encode(&sample.schema(), 1, &[column], &mut Vec::new())
        .unwrap_err();
    assert!(error.to_string().contains("is not flat"), "{error}");
}
