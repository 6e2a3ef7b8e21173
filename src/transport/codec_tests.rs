use std::io::Cursor;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::*;
use crate::transport::batch::{BatchEncoder, decode_batch, decode_schema, encode_batch, encode_schema, shared};
use crate::transport::wire::{OutgoingFrame, WireError, read_frame, write_frame, write_frames};

const LIMIT: u64 = 1 << 20;

fn open() -> Open {
    Open {
        version: PROTOCOL_VERSION,
        kind: EvalKind::GroupedMapPandas,
        row_errors: false,
        window: 8,
        digest: "ab".repeat(32),
        group_keys: vec!["k".into(), "ü".into()],
        input_schema: vec![1, 2, 3],
        output_schema: vec![],
    }
}

fn sample() -> RecordBatch {
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3)]));
    let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "bb", "ccc"]));
    RecordBatch::try_from_iter([("id", ids), ("name", names)]).unwrap()
}

#[test]
fn header_round_trips_and_pads_the_body_to_64_bytes() {
    let header = FrameHeader {
        kind: FrameKind::Batch,
        meta_len: 13,
        body_len: 100,
    };
    assert_eq!(FrameHeader::decode(&header.encode(), LIMIT).unwrap(), header);
    assert_eq!((HEADER_LEN + 13 + header.padding_len()) % BODY_ALIGNMENT, 0);
    let bodiless = FrameHeader {
        kind: FrameKind::Ack,
        meta_len: 8,
        body_len: 0,
    };
    assert_eq!(bodiless.padding_len(), 0);
}

#[test]
fn header_refuses_bad_magic_kind_reserved_and_sizes() {
    let good = FrameHeader {
        kind: FrameKind::Open,
        meta_len: 1,
        body_len: 1,
    }
    .encode();
    let mut bad = good;
    bad[0] = b'X';
    assert!(matches!(FrameHeader::decode(&bad, LIMIT), Err(CodecError::BadMagic(_))));
    bad = good;
    bad[4] = 99;
    assert_eq!(FrameHeader::decode(&bad, LIMIT), Err(CodecError::UnknownKind(99)));
    bad = good;
    bad[13] = 1;
    assert_eq!(FrameHeader::decode(&bad, LIMIT), Err(CodecError::NonZeroReserved));
    let huge_meta = FrameHeader {
        kind: FrameKind::Open,
        meta_len: MAX_META_LEN + 1,
        body_len: 0,
    }
    .encode();
    assert_eq!(
        FrameHeader::decode(&huge_meta, LIMIT),
        Err(CodecError::MetaTooLarge(MAX_META_LEN + 1))
    );
    let huge_body = FrameHeader {
        kind: FrameKind::Body,
        meta_len: 0,
        body_len: LIMIT + 1,
    }
    .encode();
    assert_eq!(
        FrameHeader::decode(&huge_body, LIMIT),
        Err(CodecError::BodyTooLarge {
            len: LIMIT + 1,
            limit: LIMIT
        })
    );
}

#[test]
fn open_round_trips_and_refuses_every_truncation() {
    let encoded = open().encode();
    assert_eq!(Open::decode(&encoded).unwrap(), open());
    for cut in 0..encoded.len() {
        assert!(Open::decode(&encoded[..cut]).is_err(), "accepted a cut at {cut}");
    }
    let mut trailing = encoded.clone();
    trailing.push(0);
    assert!(Open::decode(&trailing).is_err());
}

#[test]
fn open_refuses_unknown_kinds_flags_and_an_empty_window() {
    let mut zero_window = open();
    zero_window.window = 0;
    assert!(Open::decode(&zero_window.encode()).is_err());
    let encoded = open().encode();
    // The kind byte follows the keys (4 + 2 * (4 + len)) and the version.
    let kind_at = 4 + (4 + 1) + (4 + "ü".len()) + 2;
    let mut bad_kind = encoded.clone();
    bad_kind[kind_at] = 42;
    assert!(
        Open::decode(&bad_kind)
            .unwrap_err()
            .to_string()
            .contains("evaluation kind 42")
    );
    let mut bad_flag = encoded;
    bad_flag[kind_at + 1] = 2;
    assert!(Open::decode(&bad_flag).is_err());
}

#[test]
fn kinds_and_codes_round_trip_by_byte_and_name() {
    for kind in EvalKind::ALL {
        assert_eq!(EvalKind::from_byte(kind as u8), Some(kind));
        assert_eq!(EvalKind::from_name(kind.name()), Some(kind));
    }
    for byte in 0..=6 {
        let code = StatusCode::from_byte(byte).unwrap();
        assert_eq!(StatusCode::from_name(code.name()), Some(code));
    }
    assert_eq!(StatusCode::from_byte(7), None);
}

#[test]
fn small_messages_round_trip() {
    let meta = encode_batch_meta(7, b"flatbuffer");
    let (seq, rest) = decode_batch_meta(&meta).unwrap();
    assert_eq!((seq, rest), (7, &b"flatbuffer"[..]));
    assert_eq!(decode_u64_meta(&encode_u64_meta(42), "ack").unwrap(), 42);
    assert!(decode_u64_meta(&[1, 2, 3], "ack").is_err());
    let meta = encode_status_meta(StatusCode::UdfError, "Traceback ...");
    assert_eq!(
        decode_status_meta(&meta).unwrap(),
        (StatusCode::UdfError, "Traceback ...".into())
    );
    assert!(decode_status_meta(&[9, 0, 0, 0, 0]).is_err());
}

#[test]
fn batches_round_trip_through_frames_with_aligned_bodies() {
    let batch = sample();
    let schema = shared(decode_schema(&encode_schema(&batch.schema()).unwrap()).unwrap());
    let encoded = encode_batch(&batch, &schema).unwrap();
    let mut wire = Vec::new();
    write_frame(
        &mut wire,
        FrameKind::Batch,
        &encode_batch_meta(3, &encoded.ipc_message),
        &encoded.body,
    )
    .unwrap();
    let frame = read_frame(&mut Cursor::new(&wire), LIMIT).unwrap();
    assert_eq!(frame.kind, FrameKind::Batch);
    assert_eq!(frame.body.as_ptr() as usize % BODY_ALIGNMENT, 0);
    let (seq, message) = decode_batch_meta(&frame.meta).unwrap();
    let decoded = decode_batch(message, &frame.body, &schema).unwrap();
    assert_eq!((seq, &decoded), (3, &batch));
    // Decoding used the frame's body in place.
    let ids = decoded.column(0).to_data();
    let start = frame.body.as_ptr() as usize;
    let values = ids.buffers()[0].as_ptr() as usize;
    assert!(values >= start && values < start + frame.body.len());
}

/// Batches unlike each other in what encoding does with them: nulls or none,
/// a slice (offsets rebased, bitmaps shifted), a nested column, no rows.
fn varied_batches() -> Vec<RecordBatch> {
    let whole = sample();
    let lists = vec![Some(vec![Some(1), None]), None, Some(vec![])];
    let nested: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(lists));
    let with_list = RecordBatch::try_from_iter([("l", nested)]).unwrap();
    let many: ArrayRef = Arc::new(Int64Array::from_iter_values(0..1000));
    let texts: ArrayRef = Arc::new(StringArray::from_iter_values((0..1000).map(|i| "x".repeat(i % 13))));
    let large = RecordBatch::try_from_iter([("id", many), ("name", texts)]).unwrap();
    vec![
        whole.clone(),
        whole.slice(1, 2),
        whole.slice(0, 0),
        large.clone(),
        large.slice(333, 500),
        with_list,
    ]
}

/// A batch frame's bytes as the connections put it on the wire, from an
/// encoder that hands out the arrays' buffers.
fn frame_from_parts(encoder: &mut BatchEncoder, seq: u64, batch: &RecordBatch) -> Vec<u8> {
    let parts = encoder.encode(batch).unwrap();
    let meta = encode_batch_meta(seq, &parts.ipc_message);
    let body = parts.body_slices();
    let frame = OutgoingFrame {
        kind: FrameKind::Batch,
        meta: &meta,
        body: &body,
    };
    let mut wire = Trickle(Vec::new());
    write_frames(&mut wire, &[frame]).unwrap();
    wire.0
}

#[test]
fn batches_encoded_as_their_own_buffers_put_the_same_bytes_on_the_wire() {
    for (seq, batch) in varied_batches().iter().enumerate() {
        let seq = seq as u64;
        let schema = batch.schema();
        let copied = encode_batch(batch, &schema).unwrap();
        let mut expected = Vec::new();
        write_frame(
            &mut expected,
            FrameKind::Batch,
            &encode_batch_meta(seq, &copied.ipc_message),
            &copied.body,
        )
        .unwrap();
        let mut encoder = BatchEncoder::new(schema.clone()).unwrap();
        // The second batch of a stream too: the first carried the schema message.
        for _ in 0..2 {
            assert_eq!(frame_from_parts(&mut encoder, seq, batch), expected, "batch {seq}");
        }
    }
}

#[test]
fn the_buffer_encoder_shares_the_arrays_memory_and_refuses_other_types() {
    let batch = varied_batches().swap_remove(3);
    let mut encoder = BatchEncoder::new(batch.schema()).unwrap();
    let parts = encoder.encode(&batch).unwrap();
    let values = batch.column(0).to_data().buffers()[0].as_ptr();
    assert!(parts.body.iter().any(|part| part.as_ptr() == values));
    let other = Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
    ]);
    let err = BatchEncoder::new(shared(other)).unwrap().encode(&batch).unwrap_err();
    assert!(err.to_string().contains("schema mismatch"), "{err}");
    let dictionary = Schema::new(vec![Field::new(
        "d",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        true,
    )]);
    assert!(BatchEncoder::new(shared(dictionary)).is_err());
}

#[test]
fn batches_of_another_type_are_refused_on_both_ends() {
    let batch = sample();
    let other = Schema::new(vec![
        Field::new("id", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
    ]);
    let err = encode_batch(&batch, &other).unwrap_err().to_string();
    assert!(err.contains("schema mismatch"), "{err}");
    let encoded = encode_batch(&batch, &batch.schema()).unwrap();
    let body = arrow_buffer::Buffer::from_vec(encoded.body);
    let one_column = shared(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
    assert!(decode_batch(&encoded.ipc_message, &body, &one_column).is_err());
}

#[test]
fn malformed_batch_messages_are_errors_not_panics() {
    let batch = sample();
    let encoded = encode_batch(&batch, &batch.schema()).unwrap();
    let schema = batch.schema();
    let short_body = arrow_buffer::Buffer::from_vec(encoded.body[..8].to_vec());
    assert!(decode_batch(&encoded.ipc_message, &short_body, &schema).is_err());
    let body = arrow_buffer::Buffer::from_vec(encoded.body.clone());
    assert!(decode_batch(b"not a flatbuffer at all", &body, &schema).is_err());
    let schema_message = encode_schema(&schema).unwrap();
    assert!(decode_batch(&schema_message, &body, &schema).is_err());
    for cut in (0..encoded.ipc_message.len()).step_by(7) {
        let _ = decode_batch(&encoded.ipc_message[..cut], &body, &schema);
    }
}

#[test]
fn dictionary_columns_are_refused_with_a_clear_error() {
    let schema = Schema::new(vec![Field::new(
        "d",
        DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
        true,
    )]);
    assert!(
        encode_schema(&schema)
            .unwrap_err()
            .to_string()
            .contains("dictionary-encoded")
    );
}

#[test]
fn reading_stops_cleanly_between_frames_and_fails_inside_one() {
    let mut wire = Vec::new();
    write_frame(&mut wire, FrameKind::End, &encode_u64_meta(1), &[]).unwrap();
    let mut cursor = Cursor::new(&wire);
    assert_eq!(read_frame(&mut cursor, LIMIT).unwrap().kind, FrameKind::End);
    assert!(matches!(read_frame(&mut cursor, LIMIT), Err(WireError::Closed)));
    for cut in 1..wire.len() {
        assert!(matches!(
            read_frame(&mut Cursor::new(&wire[..cut]), LIMIT),
            Err(WireError::Codec(_))
        ));
    }
}

/// Takes at most 5 bytes per call, as a congested socket may.
struct Trickle(Vec<u8>);

impl std::io::Write for Trickle {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(5);
        self.0.extend_from_slice(&data[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn frames_survive_partial_writes() {
    let mut whole = Vec::new();
    write_frame(&mut whole, FrameKind::Body, b"meta", &[9u8; 100]).unwrap();
    let mut trickle = Trickle(Vec::new());
    write_frame(&mut trickle, FrameKind::Body, b"meta", &[9u8; 100]).unwrap();
    assert_eq!(trickle.0, whole);
    let frame = read_frame(&mut Cursor::new(&whole), LIMIT).unwrap();
    assert_eq!(
        (frame.meta.as_slice(), frame.body.as_slice()),
        (&b"meta"[..], &[9u8; 100][..])
    );
}

#[test]
fn frames_written_together_read_back_one_by_one() {
    let body = [3u8; 70];
    let frames = [
        OutgoingFrame {
            kind: FrameKind::Body,
            meta: b"first",
            body: &[&body[..30], &[], &body[30..]],
        },
        OutgoingFrame {
            kind: FrameKind::Ack,
            meta: &encode_u64_meta(4),
            body: &[],
        },
    ];
    let mut together = Trickle(Vec::new());
    write_frames(&mut together, &frames).unwrap();
    let mut one_by_one = Vec::new();
    for frame in &frames {
        write_frame(&mut one_by_one, frame.kind, frame.meta, &frame.body.concat()).unwrap();
    }
    assert_eq!(together.0, one_by_one);
    let mut cursor = Cursor::new(&together.0);
    let first = read_frame(&mut cursor, LIMIT).unwrap();
    assert_eq!(
        (first.kind, first.meta.as_slice(), first.body.as_slice()),
        (FrameKind::Body, &b"first"[..], &body[..])
    );
    let second = read_frame(&mut cursor, LIMIT).unwrap();
    assert_eq!((second.kind, second.meta), (FrameKind::Ack, encode_u64_meta(4)));
    assert!(matches!(read_frame(&mut cursor, LIMIT), Err(WireError::Closed)));
}

#[test]
fn stream_stats_round_trip_and_an_empty_body_has_none() {
    let stats = StreamStats {
        function_nanos: 1_234_567,
        function_cached: true,
    };
    let body = stats.encode();
    assert_eq!(body.len(), STREAM_STATS_LEN);
    assert_eq!(StreamStats::decode(&body), Ok(Some(stats)));
    assert_eq!(StreamStats::decode(b""), Ok(None));
}

#[test]
fn stream_stats_ignore_later_fields_and_refuse_short_or_bad_ones() {
    let mut longer = StreamStats::default().encode();
    longer.extend_from_slice(b"a field of a later version");
    assert_eq!(StreamStats::decode(&longer), Ok(Some(StreamStats::default())));
    assert!(matches!(StreamStats::decode(&[1, 2, 3]), Err(CodecError::Truncated(_))));
    let mut bad_flag = StreamStats::default().encode();
    bad_flag[8] = 2;
    assert!(matches!(StreamStats::decode(&bad_flag), Err(CodecError::Invalid(_))));
}

/// A string column built without checks, as a buggy or hostile peer might send it.
fn unchecked_strings<O: arrow_array::OffsetSizeTrait>(offsets: Vec<O>, values: &[u8]) -> RecordBatch {
    use arrow_array::GenericStringArray;
    use arrow_buffer::{OffsetBuffer, ScalarBuffer};
    // SAFETY: only encoded, which copies bytes and reads no value as text.
    let offsets = unsafe { OffsetBuffer::new_unchecked(ScalarBuffer::from(offsets)) };
    let array = unsafe { GenericStringArray::<O>::new_unchecked(offsets, arrow_buffer::Buffer::from(values), None) };
    RecordBatch::try_from_iter([("s", Arc::new(array) as ArrayRef)]).unwrap()
}

fn decode_error(batch: &RecordBatch) -> String {
    let encoded = encode_batch(batch, &batch.schema()).unwrap();
    let body = arrow_buffer::Buffer::from_vec(encoded.body);
    decode_batch(&encoded.ipc_message, &body, &batch.schema())
        .unwrap_err()
        .to_string()
}

#[test]
fn string_columns_with_bad_text_or_offsets_are_refused_with_a_clear_error() {
    let cases = [
        (
            unchecked_strings(vec![0i32, 2, 4], b"ab\xff\xfe"),
            "invalid UTF-8 at byte 2",
        ),
        (
            unchecked_strings(vec![0i64, 2, 4], b"ab\xff\xfe"),
            "invalid UTF-8 at byte 2",
        ),
        // "é" is two bytes: offset 1 cuts it in half, though every byte is UTF-8.
        (
            unchecked_strings(vec![0i32, 1, 3], "éa".as_bytes()),
            "offset 1 falls inside a UTF-8 character",
        ),
        (
            unchecked_strings(vec![0i64, 1, 3], "éa".as_bytes()),
            "offset 1 falls inside a UTF-8 character",
        ),
        (unchecked_strings(vec![0i32, 3, 1, 4], b"abcd"), "non-monotonic offset"),
    ];
    for (batch, why) in cases {
        let err = decode_error(&batch);
        assert!(err.contains(why), "{err:?} should say {why:?}");
    }
}

#[test]
fn text_that_is_not_ascii_round_trips_in_either_offset_width() {
    use arrow_array::LargeStringArray;
    let words = ["façade", "", "日本語", "a", "🦀 ok", "ü"];
    let narrow: ArrayRef = Arc::new(StringArray::from(words.to_vec()));
    let wide: ArrayRef = Arc::new(LargeStringArray::from(words.to_vec()));
    let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..6));
    let batch = RecordBatch::try_from_iter([("n", narrow), ("id", ids), ("w", wide)]).unwrap();
    for batch in [batch.clone(), batch.slice(2, 3), batch.slice(6, 0)] {
        let encoded = encode_batch(&batch, &batch.schema()).unwrap();
        let body = arrow_buffer::Buffer::from_vec(encoded.body);
        let decoded = decode_batch(&encoded.ipc_message, &body, &batch.schema()).unwrap();
        assert_eq!(decoded, batch);
        assert_eq!(decoded.schema(), batch.schema());
    }
}
