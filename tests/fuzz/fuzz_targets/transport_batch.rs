//! Any bytes a peer sends as a record batch are refused with an error or
//! decoded into arrays that pass arrow's full validation: never a panic, and
//! never a batch the project's own checks (which replace arrow's for flat
//! columns) let through while arrow's would have refused it. The decoder of
//! a batch as struct data (what the Python receiver hands to pyarrow, built
//! without arrays for flat columns) must agree with it on every input.
//!
//! Input: one byte choosing the stream's schema (one of `fixed_schemas`, or,
//! past them, an IPC schema message read from the input behind a 2-byte
//! little-endian length, as `Open` carries it), then the batch's IPC message
//! behind a 2-byte length, then the body.
#![no_main]

use std::sync::{Arc, Once};

use arrow_array::{Array, StructArray};
use arrow_buffer::Buffer;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use flightpickle_core::transport::batch::{decode_batch, decode_batch_data, decode_schema};
use libfuzzer_sys::fuzz_target;

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

/// Schemas of both decoding paths: flat columns (checked by the project)
/// and nested ones (checked by arrow-ipc).
fn fixed_schemas() -> Vec<SchemaRef> {
    let list = DataType::List(Arc::new(field("item", DataType::Int32, true)));
    let point = DataType::Struct(Fields::from(vec![
        field("x", DataType::Int64, true),
        field("label", DataType::Utf8, true),
    ]));
    let schemas = vec![
        vec![field("id", DataType::Int64, true), field("name", DataType::Utf8, true)],
        vec![
            field("id", DataType::Int64, false),
            field("name", DataType::Utf8, false),
        ],
        vec![
            field("flag", DataType::Boolean, true),
            field("value", DataType::Float64, true),
            field("day", DataType::Date32, true),
            field("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            field("price", DataType::Decimal128(10, 2), true),
        ],
        vec![
            field("raw", DataType::Binary, true),
            field("text", DataType::LargeUtf8, true),
            field("blob", DataType::LargeBinary, false),
            field("small", DataType::Int8, true),
            field("port", DataType::UInt16, false),
        ],
        vec![field("items", list, true)],
        vec![field("point", point, true)],
    ];
    schemas
        .into_iter()
        .map(|fields| Arc::new(Schema::new(fields)))
        .collect()
}

/// The next `len`-prefixed slice of `input` and what follows it.
fn take_prefixed(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = input.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_le_bytes(*len));
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// libFuzzer's hook aborts on every panic, even one the decoder catches and
/// turns into an error (see `read_nested`); std's own hook only reports it.
/// A panic the decoder lets escape still fails the run.
fn let_the_decoder_catch_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| drop(std::panic::take_hook()));
}

fuzz_target!(|input: &[u8]| {
    let_the_decoder_catch_panics();
    let Some((&choice, rest)) = input.split_first() else {
        return;
    };
    let fixed = fixed_schemas();
    let (schema, rest) = match fixed.get(usize::from(choice)) {
        Some(schema) => (schema.clone(), rest),
        None => {
            let Some((message, rest)) = take_prefixed(rest) else {
                return;
            };
            let Ok(schema) = decode_schema(message) else {
                return;
            };
            (Arc::new(schema), rest)
        }
    };
    let Some((ipc_message, body)) = take_prefixed(rest) else {
        return;
    };
    let body = Buffer::from(body);
    let decoded = decode_batch(ipc_message, &body, &schema);
    // The data a receiver hands to pyarrow: built without arrays for flat
    // columns, it must accept and refuse exactly what the arrays' decoder does.
    match (&decoded, decode_batch_data(ipc_message, &body, &schema)) {
        (Ok(batch), Ok(data)) => {
            if let Err(e) = data.validate_full() {
                panic!("data was accepted but arrow refuses it: {e}");
            }
            assert_eq!(StructArray::from(batch.clone()).into_data(), data);
        }
        (Err(refused), Err(also)) => assert_eq!(refused.to_string(), also.to_string()),
        (batch, data) => panic!("the decoders disagree: {batch:?} and {data:?}"),
    }
    let Ok(batch) = decoded else {
        return;
    };
    assert_eq!(batch.num_columns(), schema.fields().len());
    for (column, field) in batch.columns().iter().zip(schema.fields()) {
        assert_eq!(column.data_type(), field.data_type());
        assert_eq!(column.len(), batch.num_rows());
        if let Err(e) = column.to_data().validate_full() {
            panic!("column {:?} was accepted but arrow refuses it: {e}", field.name());
        }
    }
});
