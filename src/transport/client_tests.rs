//! The client against stand-in services that speak the codec on the other end
//! of a socket pair; `tests/spark` and the JNI tests run it against the real
//! Python service. The stand-in service also serves the Flight client's
//! tests, behind the real Flight front.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::*;
use crate::transport::batch::{decode_batch, decode_schema, encode_batch};
use crate::transport::codec::{StreamStats, encode_status_meta, encode_u64_meta};
use crate::transport::unix::split;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]))
}

pub(crate) fn batch(values: &[i64]) -> RecordBatch {
    let column: ArrayRef = Arc::new(Int64Array::from(values.to_vec()));
    RecordBatch::try_new(schema(), vec![column]).unwrap()
}

pub(crate) fn spec(window: u32) -> StreamSpec {
    StreamSpec {
        kind: EvalKind::MapArrow,
        body: FunctionBody::Envelope(b"sealed function".to_vec()),
        digest: "d".repeat(64),
        input_schema: schema(),
        output_schema: schema(),
        window,
        group_keys: vec![],
        timeout: TIMEOUT,
        body_limit: 1 << 20,
    }
}

/// The service's end: reads `Open`, asks for the body, checks it, says ready.
pub(crate) struct Service {
    pub(crate) reader: FrameReader,
    pub(crate) writer: FrameWriter,
    pub(crate) open: Open,
}

impl Service {
    pub(crate) fn accept(stream: UnixStream) -> Self {
        let (mut reader, mut writer) = split(stream, 1 << 20).unwrap();
        let frame = reader.recv(TIMEOUT).unwrap();
        assert_eq!(frame.kind, FrameKind::Open);
        assert!(frame.body.is_empty(), "the function goes only when asked for");
        let open = Open::decode(&frame.meta).unwrap();
        writer.send(FrameKind::NeedBody, &[], &[], TIMEOUT).unwrap();
        let body = reader.recv(TIMEOUT).unwrap();
        assert_eq!(
            (body.kind, body.body.as_slice()),
            (FrameKind::Body, &b"sealed function"[..])
        );
        writer.send(FrameKind::Ready, &[], &[], TIMEOUT).unwrap();
        Self { reader, writer, open }
    }

    pub(crate) fn next_batch(&mut self) -> Option<(u64, RecordBatch)> {
        let frame = self.reader.recv(TIMEOUT).unwrap();
        if frame.kind == FrameKind::End {
            return None;
        }
        assert_eq!(frame.kind, FrameKind::Batch);
        let (seq, message) = codec::decode_batch_meta(&frame.meta).unwrap();
        let schema = Arc::new(decode_schema(&self.open.input_schema).unwrap());
        Some((seq, decode_batch(message, &frame.body, &schema).unwrap()))
    }

    pub(crate) fn send_result(&mut self, seq: u64, batch: &RecordBatch) {
        let encoded = encode_batch(batch, &schema()).unwrap();
        let meta = codec::encode_batch_meta(seq, &encoded.ipc_message);
        self.writer
            .send(FrameKind::Batch, &meta, &encoded.body, TIMEOUT)
            .unwrap();
    }

    pub(crate) fn send(&mut self, kind: FrameKind, meta: &[u8]) {
        self.writer.send(kind, meta, &[], TIMEOUT).unwrap();
    }
}

fn with_service(window: u32, serve: impl FnOnce(Service) + Send + 'static) -> (Stream, thread::JoinHandle<()>) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let service = thread::spawn(move || serve(Service::accept(theirs)));
    (Stream::open_on(ours, spec(window)).unwrap(), service)
}

pub(crate) fn values(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn batches_go_through_in_order_within_the_window() {
    let (mut stream, service) = with_service(2, |mut service| {
        assert_eq!((service.open.window, service.open.kind), (2, EvalKind::MapArrow));
        let mut unacknowledged = Vec::new();
        while let Some((seq, input)) = service.next_batch() {
            unacknowledged.push(seq);
            assert!(
                unacknowledged.len() <= 2,
                "the client exceeded its window: {unacknowledged:?}"
            );
            let doubled: Vec<i64> = values(&input).iter().map(|v| v * 2).collect();
            service.send_result(seq, &batch(&doubled));
            // Acknowledge late, so that the client has to wait for room.
            if unacknowledged.len() == 2 {
                service.send(FrameKind::Ack, &encode_u64_meta(unacknowledged.remove(0)));
            }
        }
        for seq in unacknowledged {
            service.send(FrameKind::Ack, &encode_u64_meta(seq));
        }
        service.send(FrameKind::Status, &encode_status_meta(StatusCode::Ok, ""));
    });
    assert_doubles_in_order(&mut stream, 6);
    service.join().unwrap();
}

/// Pushes `count` batches `[i, i + 100]`, taking results as they come, then
/// the rest after the end: a doubling service's results, in order, and the
/// end repeats.
pub(crate) fn assert_doubles_in_order(stream: &mut Stream, count: i64) {
    let mut results = Vec::new();
    for i in 0..count {
        stream.push(&batch(&[i, i + 100])).unwrap();
        if let Some(result) = stream.try_pull().unwrap() {
            results.push(values(&result));
        }
    }
    stream.finish().unwrap();
    while let Some(result) = stream.pull().unwrap() {
        results.push(values(&result));
    }
    let expected: Vec<Vec<i64>> = (0..count).map(|i| vec![2 * i, 2 * (i + 100)]).collect();
    assert_eq!(results, expected);
    assert_eq!(stream.pull().unwrap(), None, "the end repeats");
}

#[test]
fn a_failing_function_ends_the_stream_with_its_traceback() {
    let (mut stream, service) = with_service(4, |mut service| {
        service.next_batch().unwrap();
        service.send(
            FrameKind::Status,
            &encode_status_meta(StatusCode::UdfError, "Traceback ...\nZeroDivisionError"),
        );
    });
    stream.push(&batch(&[1])).unwrap();
    let error = stream.pull().unwrap_err();
    assert_eq!(
        error,
        ClientError::Status(StatusCode::UdfError, "Traceback ...\nZeroDivisionError".into())
    );
    assert!(error.to_string().contains("ZeroDivisionError"));
    assert_eq!(stream.pull().unwrap_err(), error, "a failed stream repeats its error");
    service.join().unwrap();
}

/// Echoes the one input batch, then ends with an ok status that carries `measured`.
pub(crate) fn echo_one_then_measured_ok(mut service: Service, measured: StreamStats) {
    let (seq, input) = service.next_batch().unwrap();
    service.send_result(seq, &input);
    service.send(FrameKind::Ack, &encode_u64_meta(seq));
    assert!(service.next_batch().is_none());
    let status = encode_status_meta(StatusCode::Ok, "");
    service
        .writer
        .send(FrameKind::Status, &status, &measured.encode(), TIMEOUT)
        .unwrap();
}

#[test]
fn the_final_status_brings_the_services_stats_and_a_bare_one_none() {
    let measured = StreamStats {
        function_nanos: 42_000,
        function_cached: false,
    };
    let (mut stream, service) = with_service(4, move |service| echo_one_then_measured_ok(service, measured));
    stream.push(&batch(&[7])).unwrap();
    stream.finish().unwrap();
    assert_eq!(stream.stats(), None, "no stats before the status");
    assert_eq!(values(&stream.pull().unwrap().unwrap()), [7]);
    assert_eq!(stream.pull().unwrap(), None);
    assert_eq!(stream.stats(), Some(measured));
    service.join().unwrap();

    let (mut stream, service) = with_service(4, |mut service| {
        service.next_batch().unwrap();
        service.send(FrameKind::Status, &encode_status_meta(StatusCode::UdfError, "boom"));
    });
    stream.push(&batch(&[1])).unwrap();
    assert!(stream.pull().is_err());
    assert_eq!(stream.stats(), None, "a service that sends no stats");
    service.join().unwrap();
}

#[test]
fn a_connection_closed_without_status_is_a_lost_worker() {
    let (mut stream, service) = with_service(4, |mut service| {
        service.next_batch().unwrap();
        // Dropping the service closes the connection, as a dying worker does.
    });
    stream.push(&batch(&[1])).unwrap();
    service.join().unwrap();
    assert!(matches!(stream.pull(), Err(ClientError::WorkerLost(_))));
}

#[test]
fn results_out_of_order_are_a_protocol_error() {
    let (mut stream, service) = with_service(4, |mut service| {
        let (_, input) = service.next_batch().unwrap();
        service.send_result(1, &input);
        let _ = service.reader.recv(TIMEOUT);
    });
    stream.push(&batch(&[1])).unwrap();
    let error = stream.pull().unwrap_err();
    assert!(
        matches!(&error, ClientError::Protocol(why) if why.contains("result 1 arrived where 0 was due")),
        "{error}"
    );
    stream.close();
    service.join().unwrap();
}

#[test]
fn a_refusal_at_open_is_reported_and_a_wrong_batch_is_refused_before_sending() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let service = thread::spawn(move || {
        let (mut reader, mut writer) = split(theirs, 1 << 20).unwrap();
        reader.recv(TIMEOUT).unwrap();
        let refusal = encode_status_meta(StatusCode::ProtocolError, "the sealed function was refused");
        writer.send(FrameKind::Status, &refusal, &[], TIMEOUT).unwrap();
    });
    let error = Stream::open_on(ours, spec(1)).err().expect("refused");
    assert_eq!(error.kind(), "protocol_error");
    service.join().unwrap();

    let (mut stream, service) = with_service(1, |mut service| assert!(service.next_batch().is_none()));
    let names: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
    let wrong = RecordBatch::try_from_iter([("x", names)]).unwrap();
    assert!(matches!(stream.push(&wrong), Err(ClientError::Usage(why)) if why.contains("schema mismatch")));
    stream.finish().unwrap();
    service.join().unwrap();
}

#[test]
fn a_silent_service_times_out() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let mut quick = spec(1);
    quick.timeout = Duration::from_millis(50);
    let error = Stream::open_on(ours, quick).err().expect("timed out");
    assert!(matches!(error, ClientError::TimedOut(_)), "{error}");
    drop(theirs);
}

/// A deferred body that counts how often it was made.
fn counted_body(made: &Arc<AtomicUsize>, result: Result<Vec<u8>, String>) -> FunctionBody {
    let made = made.clone();
    FunctionBody::Deferred(Arc::new(move || {
        made.fetch_add(1, Ordering::SeqCst);
        result.clone()
    }))
}

#[test]
fn a_deferred_body_is_made_only_when_the_service_asks_for_it() {
    let made = Arc::new(AtomicUsize::new(0));
    // Asked: the body is made once and sent (Service::accept checks its bytes).
    let (ours, theirs) = UnixStream::pair().unwrap();
    let service = thread::spawn(move || assert!(Service::accept(theirs).next_batch().is_none()));
    let mut asked = spec(1);
    asked.body = counted_body(&made, Ok(b"sealed function".to_vec()));
    let mut stream = Stream::open_on(ours, asked).unwrap();
    stream.finish().unwrap();
    service.join().unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 1);
    // Known by its digest: the service says ready at once, and the body is never made.
    let (ours, theirs) = UnixStream::pair().unwrap();
    let service = thread::spawn(move || {
        let (mut reader, mut writer) = split(theirs, 1 << 20).unwrap();
        assert_eq!(reader.recv(TIMEOUT).unwrap().kind, FrameKind::Open);
        writer.send(FrameKind::Ready, &[], &[], TIMEOUT).unwrap();
    });
    let mut known = spec(1);
    known.body = counted_body(&made, Err("must not be read".into()));
    drop(Stream::open_on(ours, known).unwrap());
    service.join().unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 1);
}

#[test]
fn a_body_that_cannot_be_made_fails_the_open_with_the_reason() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let service = thread::spawn(move || {
        let (mut reader, mut writer) = split(theirs, 1 << 20).unwrap();
        reader.recv(TIMEOUT).unwrap();
        writer.send(FrameKind::NeedBody, &[], &[], TIMEOUT).unwrap();
        // The caller gives up: its end closes without sending a body.
        assert!(reader.recv(TIMEOUT).is_err());
    });
    let mut failing = spec(1);
    failing.body = counted_body(&Arc::new(AtomicUsize::new(0)), Err("the broadcast file is gone".into()));
    let error = Stream::open_on(ours, failing).err().expect("no body");
    assert!(error.to_string().contains("the broadcast file is gone"), "{error}");
    service.join().unwrap();
}

#[test]
fn a_cancelled_stream_stops_waiting_at_once_and_says_so() {
    let (mut stream, service) = with_service(1, |mut service| {
        // Takes the batch and never answers, like a function that runs for minutes.
        service.next_batch().unwrap();
        assert!(service.reader.recv(TIMEOUT).is_err(), "the connection closes on cancel");
    });
    assert_a_cancel_ends_the_wait(&mut stream);
    service.join().unwrap();
}

/// Pushes a batch that the service never answers and cancels the stream
/// from another thread while its owner waits for a result: the wait ends
/// with `Cancelled` (it would last TIMEOUT, the test's own bound, without
/// the cancel), and the stream stays cancelled.
pub(crate) fn assert_a_cancel_ends_the_wait(stream: &mut Stream) {
    stream.push(&batch(&[1])).unwrap();
    let canceller = stream.canceller();
    let cancelling = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        canceller.cancel();
    });
    assert_eq!(stream.pull().unwrap_err(), ClientError::Cancelled);
    assert_eq!(
        stream.push(&batch(&[2])).unwrap_err(),
        ClientError::Cancelled,
        "a cancelled stream stays so"
    );
    cancelling.join().unwrap();
}
