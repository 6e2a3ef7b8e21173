use arrow_flight::{FlightData, FlightDescriptor};
use arrow_schema::{DataType, Field, Schema};
use base64::Engine;
use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::transport::batch::decode_schema;
use crate::transport::wire::Frame;

fn schema(name: &str, data_type: DataType) -> Schema {
    Schema::new(vec![Field::new(name, data_type, true)])
}

/// What `pyarrow.Schema.serialize()` gives: continuation marker, length, flatbuffer.
fn encapsulated(schema: &Schema) -> Vec<u8> {
    let flatbuffer = encode_schema(schema).unwrap();
    let mut out = vec![0xff; 4];
    out.extend_from_slice(&(flatbuffer.len() as i32).to_le_bytes());
    out.extend_from_slice(&flatbuffer);
    out
}

fn open_document() -> serde_json::Value {
    let output = base64::engine::general_purpose::STANDARD.encode(encapsulated(&schema("result", DataType::Utf8)));
    json!({"version": 1, "kind": "scalar_row", "digest": "ab12", "window": 4, "output_schema": output})
}

fn first_message(document: &serde_json::Value, input: &Schema) -> FlightData {
    FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(document.to_string())),
        data_header: encode_schema(input).unwrap().into(),
        ..Default::default()
    }
}

#[test]
fn the_first_message_becomes_open() {
    let open = open_from_first(&first_message(&open_document(), &schema("x", DataType::Int64))).unwrap();
    assert_eq!(
        (open.version, open.kind, open.window, open.digest.as_str()),
        (1, EvalKind::ScalarRow, 4, "ab12")
    );
    assert!(!open.row_errors && open.group_keys.is_empty());
    assert_eq!(decode_schema(&open.input_schema).unwrap(), schema("x", DataType::Int64));
    assert_eq!(
        decode_schema(&open.output_schema).unwrap(),
        schema("result", DataType::Utf8)
    );
}

#[test]
fn optional_open_fields_are_read() {
    let mut document = open_document();
    document["kind"] = json!("grouped_map_pandas");
    document["group_keys"] = json!(["k", "j"]);
    document["row_errors"] = json!(true);
    let open = open_from_first(&first_message(&document, &schema("x", DataType::Int64))).unwrap();
    assert_eq!(open.group_keys, ["k", "j"]);
    assert!(open.row_errors);
}

fn open_from_first(first: &FlightData) -> Result<Open, CodecError> {
    assert!(carries_schema(first));
    open_from(first, first)
}

fn refusal(first: &FlightData) -> String {
    open_from_first(first).unwrap_err().to_string()
}

#[test]
fn the_schema_may_follow_a_message_with_the_descriptor_alone() {
    let input = schema("x", DataType::Int64);
    let both = first_message(&open_document(), &input);
    let descriptor_only = FlightData {
        flight_descriptor: both.flight_descriptor.clone(),
        ..Default::default()
    };
    assert!(!carries_schema(&descriptor_only));
    let schema_only = FlightData {
        data_header: both.data_header.clone(),
        ..Default::default()
    };
    assert_eq!(
        open_from(&descriptor_only, &schema_only).unwrap(),
        open_from_first(&both).unwrap()
    );
    assert!(
        open_from(&schema_only, &schema_only)
            .unwrap_err()
            .to_string()
            .contains("no flight descriptor")
    );
}

#[test]
fn a_bad_first_message_is_refused_with_a_reason() {
    let input = schema("x", DataType::Int64);
    let mut no_descriptor = first_message(&open_document(), &input);
    no_descriptor.flight_descriptor = None;
    assert!(refusal(&no_descriptor).contains("no flight descriptor"));
    let mut path = first_message(&open_document(), &input);
    path.flight_descriptor = Some(FlightDescriptor::new_path(vec!["f".into()]));
    assert!(refusal(&path).contains("must be a command"));
    let mut not_json = first_message(&open_document(), &input);
    not_json.flight_descriptor = Some(FlightDescriptor::new_cmd("{nope"));
    assert!(refusal(&not_json).contains("not a JSON"));
    let mut no_schema = first_message(&open_document(), &input);
    no_schema.data_header = Bytes::from_static(b"garbage");
    assert!(refusal(&no_schema).contains("does not start with the input schema"));
    let mut with_metadata = first_message(&open_document(), &input);
    with_metadata.app_metadata = Bytes::from_static(b"\x03");
    assert!(refusal(&with_metadata).contains("input schema alone"));
    let mut with_body = first_message(&open_document(), &input);
    with_body.data_body = Bytes::from_static(b"body");
    assert!(refusal(&with_body).contains("input schema alone"));
}

#[test]
fn bad_open_fields_are_refused_by_name() {
    let input = schema("x", DataType::Int64);
    let cases = [
        ("kind", json!("scalar_rows"), "unknown kind"),
        ("window", json!(0), "window of 0"),
        ("window", json!(-1), "window is not an integer"),
        ("digest", json!(7), "digest is not a string"),
        ("row_errors", json!("yes"), "row_errors has the wrong type"),
        ("group_keys", json!([1]), "group_keys must be strings"),
        ("output_schema", json!("***"), "not base64"),
        ("output_schema", json!("AAAA"), "not an Arrow IPC schema"),
        ("colour", json!("blue"), "unknown field \"colour\""),
    ];
    for (field, value, expected) in cases {
        let mut document = open_document();
        document[field] = value;
        let message = refusal(&first_message(&document, &input));
        assert!(message.contains(expected), "{field}: {message}");
    }
    let mut missing = open_document();
    missing.as_object_mut().unwrap().remove("digest");
    assert!(refusal(&first_message(&missing, &input)).contains("missing field \"digest\""));
}

fn with_metadata(app_metadata: &[u8], header: &'static [u8], body: &'static [u8]) -> FlightData {
    FlightData {
        app_metadata: Bytes::copy_from_slice(app_metadata),
        data_header: Bytes::from_static(header),
        data_body: Bytes::from_static(body),
        ..Default::default()
    }
}

fn tag_and(kind: u8, value: u64) -> Vec<u8> {
    let mut meta = vec![kind];
    meta.extend_from_slice(&value.to_le_bytes());
    meta
}

#[test]
fn caller_messages_become_local_frames() {
    let batch = caller_frame(&with_metadata(&tag_and(5, 9), b"header", b"body")).unwrap();
    assert_eq!(batch.kind, FrameKind::Batch);
    assert_eq!(codec::decode_batch_meta(&batch.meta).unwrap(), (9, &b"header"[..]));
    assert_eq!(batch.body, Bytes::from_static(b"body"));
    let end = caller_frame(&with_metadata(&tag_and(7, 3), b"", b"")).unwrap();
    assert_eq!(
        (end.kind, codec::decode_u64_meta(&end.meta, "end").unwrap()),
        (FrameKind::End, 3)
    );
    let body = caller_frame(&with_metadata(b"\x03sealed", b"", b"")).unwrap();
    assert_eq!(
        (body.kind, body.meta.is_empty(), &body.body[..]),
        (FrameKind::Body, true, &b"sealed"[..])
    );
}

#[test]
fn malformed_caller_messages_are_refused() {
    let cases: [(FlightData, &str); 6] = [
        (with_metadata(b"", b"header", b"body"), "no app_metadata"),
        (
            with_metadata(&tag_and(6, 0), b"", b""),
            "kind 6 is not one a caller sends",
        ),
        (with_metadata(&tag_and(5, 0), b"", b""), "batch without an IPC"),
        (with_metadata(&tag_and(7, 0), b"header", b""), "non-batch message with"),
        (
            with_metadata(&[5, 1, 2], b"header", b""),
            "truncated batch sequence number",
        ),
        (with_metadata(b"\x03", b"", b"body"), "goes in app_metadata"),
    ];
    for (data, expected) in cases {
        let message = caller_frame(&data).unwrap_err().to_string();
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

fn frame(kind: FrameKind, meta: Vec<u8>, body: &[u8]) -> Frame {
    Frame {
        kind,
        meta,
        body: arrow_buffer::Buffer::from(body.to_vec()),
    }
}

#[test]
fn service_frames_become_flight_messages() {
    let need = service_reply(&frame(FrameKind::NeedBody, vec![], b""), b"schema", false).unwrap();
    assert_eq!(need.messages[0].app_metadata, Bytes::from_static(b"\x02"));
    let ready = service_reply(&frame(FrameKind::Ready, vec![], b""), b"schema", false).unwrap();
    assert_eq!(ready.messages.len(), 2);
    assert_eq!(
        (
            &ready.messages[0].data_header[..],
            ready.messages[0].app_metadata.is_empty()
        ),
        (&b"schema"[..], true)
    );
    assert_eq!(ready.messages[1].app_metadata, Bytes::from_static(b"\x04"));
    let batch = service_reply(
        &frame(FrameKind::Batch, codec::encode_batch_meta(2, b"hdr"), b"payload"),
        b"",
        false,
    )
    .unwrap();
    let message = &batch.messages[0];
    assert_eq!(message.app_metadata.to_vec(), tag_and(5, 2));
    assert_eq!(
        (&message.data_header[..], &message.data_body[..]),
        (&b"hdr"[..], &b"payload"[..])
    );
    let ack = service_reply(&frame(FrameKind::Ack, codec::encode_u64_meta(4), b""), b"", false).unwrap();
    assert_eq!(ack.messages[0].app_metadata.to_vec(), tag_and(6, 4));
    assert!(batch.end.is_none() && ack.end.is_none());
}

#[test]
fn the_status_is_a_message_and_ends_the_call() {
    let meta = codec::encode_status_meta(StatusCode::UdfError, "Traceback: boom");
    let reply = service_reply(&frame(FrameKind::Status, meta, b""), b"", false).unwrap();
    assert_eq!(&reply.messages[0].app_metadata[..], b"\x08\x01Traceback: boom");
    assert_eq!(reply.end, Some((StatusCode::UdfError, "Traceback: boom".into())));
    let status = grpc_status(StatusCode::UdfError, "Traceback: boom");
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unknown, "udf_error: Traceback: boom")
    );
}

#[test]
fn stats_precede_the_status_only_for_a_caller_that_asked() {
    let stats = codec::StreamStats {
        function_nanos: 5_000,
        function_cached: true,
    };
    let status = || {
        frame(
            FrameKind::Status,
            codec::encode_status_meta(StatusCode::Ok, ""),
            &stats.encode(),
        )
    };
    let asked = service_reply(&status(), b"", true).unwrap();
    assert_eq!(asked.messages.len(), 2);
    let mut expected = vec![STATS_MESSAGE];
    expected.extend_from_slice(&stats.encode());
    assert_eq!(asked.messages[0].app_metadata.to_vec(), expected);
    assert_eq!(&asked.messages[1].app_metadata[..], b"\x08\x00");
    let not_asked = service_reply(&status(), b"", false).unwrap();
    assert_eq!(not_asked.messages.len(), 1);
    assert_eq!(&not_asked.messages[0].app_metadata[..], b"\x08\x00");
    let bare = frame(FrameKind::Status, codec::encode_status_meta(StatusCode::Ok, ""), b"");
    assert_eq!(
        service_reply(&bare, b"", true).unwrap().messages.len(),
        1,
        "nothing measured, nothing sent"
    );
}

#[test]
fn a_worker_sending_caller_messages_is_a_protocol_error() {
    let error = service_reply(&frame(FrameKind::End, codec::encode_u64_meta(0), b""), b"", false).unwrap_err();
    assert!(error.to_string().contains("only a caller sends"));
}

#[test]
fn long_grpc_messages_are_cut_on_a_character_boundary() {
    let long = "é".repeat(GRPC_MESSAGE_LIMIT);
    let status = grpc_status(StatusCode::UdfError, &long);
    assert!(status.message().len() < GRPC_MESSAGE_LIMIT + 32);
    assert!(status.message().ends_with('…'));
}

fn metadata_message(app_metadata: &[u8]) -> FlightData {
    FlightData {
        app_metadata: Bytes::copy_from_slice(app_metadata),
        ..Default::default()
    }
}

#[test]
fn a_body_follows_only_when_the_document_says_so() {
    let input = schema("x", DataType::Int64);
    assert!(!body_follows(&first_message(&open_document(), &input)).unwrap());
    let mut document = open_document();
    document["body_follows"] = json!(true);
    assert!(body_follows(&first_message(&document, &input)).unwrap());
    document["body_follows"] = json!("yes");
    assert!(body_follows(&first_message(&document, &input)).is_err());
}

#[test]
fn the_eager_body_is_a_body_message_with_the_function() {
    assert_eq!(
        eager_body(&metadata_message(b"\x03sealed")).unwrap(),
        Bytes::from_static(b"sealed")
    );
    let refused = |message: FlightData| eager_body(&message).unwrap_err().to_string();
    assert!(refused(metadata_message(b"\x03")).contains("an empty Body"));
    assert!(refused(metadata_message(b"\x07\x01\0\0\0\0\0\0\0")).contains("not end"));
    assert!(refused(metadata_message(b"")).contains("body_follows"));
}

#[test]
fn stats_are_sent_only_when_the_document_asks() {
    let input = schema("x", DataType::Int64);
    assert!(!wants_stats(&first_message(&open_document(), &input)).unwrap());
    let mut document = open_document();
    document["stats"] = json!(true);
    assert!(wants_stats(&first_message(&document, &input)).unwrap());
    document["stats"] = json!(1);
    assert!(wants_stats(&first_message(&document, &input)).is_err());
}

/// The client's side of the mapping is the front's read backwards.
#[test]
fn a_callers_frames_become_messages_the_front_reads_back_as_the_same_frames() {
    let open = Open {
        version: 1,
        kind: EvalKind::MapPandas,
        row_errors: false,
        window: 3,
        digest: "cafe".into(),
        group_keys: vec!["k".into()],
        input_schema: encode_schema(&schema("x", DataType::Int64)).unwrap(),
        output_schema: encode_schema(&schema("y", DataType::Utf8)).unwrap(),
    };
    let first = caller_message(FrameKind::Open, &open.encode(), Bytes::new()).unwrap();
    assert_eq!(open_from(&first, &first).unwrap(), open);
    assert!(
        !body_follows(&first).unwrap(),
        "the function is sent only when asked for"
    );
    assert!(wants_stats(&first).unwrap(), "the client reads the service's stats");
    let cases = [
        (FrameKind::Body, Vec::new(), &b"sealed"[..]),
        (FrameKind::Batch, codec::encode_batch_meta(5, b"header"), &b"body"[..]),
        (FrameKind::End, codec::encode_u64_meta(6), &b""[..]),
    ];
    for (kind, meta, body) in cases {
        let message = caller_message(kind, &meta, Bytes::copy_from_slice(body)).unwrap();
        let back = caller_frame(&message).unwrap();
        assert_eq!((back.kind, back.meta, &back.body[..]), (kind, meta, body));
    }
    let refused = caller_message(FrameKind::Ack, &codec::encode_u64_meta(0), Bytes::new()).unwrap_err();
    assert!(refused.to_string().contains("not a message a caller sends"));
}

#[test]
fn the_services_messages_become_the_frames_it_sent() {
    let frames = [
        frame(FrameKind::NeedBody, vec![], b""),
        frame(FrameKind::Batch, codec::encode_batch_meta(2, b"hdr"), b"payload"),
        frame(FrameKind::Ack, codec::encode_u64_meta(4), b""),
        frame(
            FrameKind::Status,
            codec::encode_status_meta(StatusCode::UdfError, "Traceback: é"),
            b"",
        ),
    ];
    for sent in frames {
        let reply = service_reply(&sent, b"", false).unwrap();
        let back = service_frame(&reply.messages[0]).unwrap().unwrap();
        assert_eq!(
            (back.kind, &back.meta, back.body.as_slice()),
            (sent.kind, &sent.meta, sent.body.as_slice())
        );
    }
    let ready = service_reply(&frame(FrameKind::Ready, vec![], b""), b"schema", false).unwrap();
    assert!(
        service_frame(&ready.messages[0]).unwrap().is_none(),
        "the output schema is skipped"
    );
    assert_eq!(
        service_frame(&ready.messages[1]).unwrap().unwrap().kind,
        FrameKind::Ready
    );
    for (bad, expected) in [
        (metadata_message(b""), "without app_metadata"),
        (metadata_message(b"\x07"), "kind 7 is not one the executor sends"),
        (metadata_message(b"\x04extra"), "unexpected bytes"),
        (metadata_message(b"\x08\x09"), "unknown status code 9"),
    ] {
        let error = service_frame(&bad).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}

#[test]
fn a_stats_message_goes_back_into_the_status_body_it_came_from() {
    let stats = StreamStats {
        function_nanos: 7_000,
        function_cached: false,
    };
    let sent = frame(
        FrameKind::Status,
        codec::encode_status_meta(StatusCode::Ok, ""),
        &stats.encode(),
    );
    let reply = service_reply(&sent, b"", true).unwrap();
    assert_eq!(service_stats(&reply.messages[0]).unwrap(), Some(stats));
    assert_eq!(service_stats(&reply.messages[1]).unwrap(), None);
    let status = service_frame(&reply.messages[1]).unwrap().unwrap();
    let back = with_stats(status, Some(stats)).unwrap();
    assert_eq!(
        (back.kind, &back.meta, back.body.as_slice()),
        (sent.kind, &sent.meta, sent.body.as_slice())
    );
    let ack = frame(FrameKind::Ack, codec::encode_u64_meta(1), b"");
    let error = with_stats(ack, Some(stats)).unwrap_err().to_string();
    assert!(error.contains("stats followed by ack"), "{error}");
    let empty = service_stats(&metadata_message(&[STATS_MESSAGE]))
        .unwrap_err()
        .to_string();
    assert!(empty.contains("without stats"), "{empty}");
}
