//! The caller's side of one executor stream, blocking, for callers that are
//! not Python (the Spark plugin, through JNI).
//!
//! One `Stream` serves both transports: a connection is a [`FrameSink`] and
//! a [`FrameSource`] of local protocol frames, over a Unix socket here, or
//! over an Arrow Flight `DoExchange` call (`flight_client`, which maps each
//! frame onto `FlightData` with `flight_map`). Everything the caller sees
//! (the handshake, the window, ordering, errors) is decided here, once.
//!
//! `Stream::open` connects, sends `Open` with the digest only and the sealed
//! function when the service answers `NeedBody`, and waits for `Ready`.
//! `push` sends input batches, keeping at most the window unacknowledged;
//! `pull` returns result batches in order (`try_pull` only those already
//! there); `finish` sends `End`, after which `pull` returns `None` at the
//! final `Ok` status.
//!
//! A thread of the stream reads every frame the service sends as soon as it
//! arrives. Without it, a caller blocked writing batch n+1 and a service
//! blocked writing the result of batch n (which nobody reads) would wait on
//! each other forever; with it, results queue up here while the caller
//! writes. Results queue without a bound: the service only computes while
//! the caller sends, so for the scalar kinds the queue holds at most the
//! window's results; a map function that multiplies its rows queues what it
//! yields until the caller pulls it.

use std::collections::VecDeque;
use std::fmt;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::batch::{decode_batch, encode_batch, encode_schema};
use super::codec::{self, CodecError, EvalKind, FrameKind, Open, PROTOCOL_VERSION, StatusCode, StreamStats};
use super::unix::{self, FrameReader, FrameWriter};
use super::wire::{Frame, WireError};

/// What a stream runs, on what, and how patiently.
#[derive(Clone, Debug)]
pub struct StreamSpec {
    pub kind: EvalKind,
    /// The sealed function (a flightpickle envelope), sent only if the service
    /// asks for it, and its digest, always sent.
    pub body: FunctionBody,
    pub digest: String,
    pub input_schema: SchemaRef,
    pub output_schema: SchemaRef,
    /// Input batches sent before the oldest must be acknowledged.
    pub window: u32,
    pub group_keys: Vec<String>,
    /// How long any one wait for the service may last.
    pub timeout: Duration,
    /// Largest frame body accepted from the service.
    pub body_limit: u64,
}

/// The sealed function of a stream, or how to get it.
#[derive(Clone)]
pub enum FunctionBody {
    Envelope(Vec<u8>),
    /// Made only when the service asks for the body: a large function (a
    /// model of many megabytes) is then read once per service worker rather
    /// than once per stream.
    Deferred(Arc<dyn Fn() -> Result<Vec<u8>, String> + Send + Sync>),
}

impl FunctionBody {
    fn envelope(&self) -> Result<Vec<u8>, ClientError> {
        match self {
            Self::Envelope(envelope) => Ok(envelope.clone()),
            Self::Deferred(load) => {
                load().map_err(|why| ClientError::Usage(format!("cannot get the sealed function: {why}")))
            }
        }
    }
}

impl fmt::Debug for FunctionBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Envelope(envelope) => write!(f, "Envelope({} bytes)", envelope.len()),
            Self::Deferred(_) => write!(f, "Deferred"),
        }
    }
}

/// Why a stream failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// The service ended the stream with this status; for `UdfError` the
    /// message is the Python traceback.
    Status(StatusCode, String),
    /// The connection closed without a status: the worker serving it died.
    WorkerLost(String),
    /// The service did not answer within the stream's timeout.
    TimedOut(String),
    /// The service sent something the protocol does not allow here.
    Protocol(String),
    /// The service could not be reached, or the connection failed.
    Io(String),
    /// The caller used the stream wrongly (a batch after `finish`, a batch
    /// of other types than the input schema).
    Usage(String),
    /// The caller cancelled the stream (its `Canceller`), from another thread.
    Cancelled,
    /// A remote pool refused the caller's bearer token (or its lack of one).
    Unauthenticated(String),
}

impl ClientError {
    /// A short name for each kind, for the fronts to map onto their own errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status(code, _) => code.name(),
            Self::WorkerLost(_) => "worker_lost",
            Self::TimedOut(_) => "timeout",
            Self::Protocol(_) => "protocol_error",
            Self::Io(_) => "io",
            Self::Usage(_) => "usage",
            Self::Cancelled => "cancelled",
            Self::Unauthenticated(_) => "unauthenticated",
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(StatusCode::UdfError, traceback) => write!(f, "the Python function failed:\n{traceback}"),
            Self::Status(code, message) => write!(f, "the executor ended the stream ({}): {message}", code.name()),
            Self::WorkerLost(why) => {
                write!(
                    f,
                    "the executor closed the stream without a status (its worker died?): {why}"
                )
            }
            Self::TimedOut(what) => write!(f, "no answer from the executor: {what}"),
            Self::Protocol(why) | Self::Io(why) | Self::Usage(why) | Self::Unauthenticated(why) => write!(f, "{why}"),
            Self::Cancelled => write!(f, "the stream was cancelled by its caller"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<CodecError> for ClientError {
    fn from(error: CodecError) -> Self {
        Self::Protocol(error.to_string())
    }
}

fn wire_error(error: WireError, waiting_for: &str, timeout: Duration) -> ClientError {
    match error {
        WireError::Closed => ClientError::WorkerLost(format!("closed while waiting for {waiting_for}")),
        WireError::TimedOut => ClientError::TimedOut(format!("waited {timeout:?} for {waiting_for}")),
        WireError::Codec(e) => ClientError::Protocol(e.to_string()),
        WireError::Io(e) if is_disconnect(&e) => ClientError::WorkerLost(e.to_string()),
        WireError::Io(e) => ClientError::Io(e.to_string()),
    }
}

fn is_disconnect(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(error.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Where the service listens.
#[derive(Clone)]
pub enum Endpoint {
    /// A service on this host, on a Unix socket.
    Unix(PathBuf),
    /// A remote pool over Arrow Flight.
    #[cfg(feature = "flight")]
    Flight(super::flight_client::FlightEndpoint),
}

impl Endpoint {
    /// `grpc://host:port` or `grpc+tls://host:port` for a remote pool (with
    /// its bearer token and the PEM CA certificates that sign its TLS
    /// certificate, if any); `unix:///path` or a bare path for a local one.
    pub fn parse(address: &str, token: Option<String>, tls_ca: Option<Vec<u8>>) -> Result<Self, ClientError> {
        if address.starts_with("grpc://") || address.starts_with("grpc+tls://") {
            return Self::flight(address, token, tls_ca);
        }
        if token.is_some() || tls_ca.is_some() {
            return Err(ClientError::Usage(format!(
                "a bearer token or TLS CA is for a grpc:// pool, not for the Unix socket {address}"
            )));
        }
        let path = address.strip_prefix("unix://").unwrap_or(address);
        if path.is_empty() || address.contains("://") && !address.starts_with("unix://") {
            return Err(ClientError::Usage(format!(
                "{address:?} is not an executor address: use unix:///path, grpc://host:port or grpc+tls://host:port"
            )));
        }
        Ok(Self::Unix(PathBuf::from(path)))
    }

    #[cfg(feature = "flight")]
    fn flight(address: &str, token: Option<String>, tls_ca: Option<Vec<u8>>) -> Result<Self, ClientError> {
        super::flight_client::FlightEndpoint::parse(address, token, tls_ca).map(Self::Flight)
    }

    #[cfg(not(feature = "flight"))]
    fn flight(address: &str, _: Option<String>, _: Option<Vec<u8>>) -> Result<Self, ClientError> {
        Err(ClientError::Usage(format!(
            "{address}: this build of flightpickle has no Arrow Flight client (feature `flight`)"
        )))
    }
}

impl fmt::Debug for Endpoint {
    /// Never shows the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            #[cfg(feature = "flight")]
            Self::Flight(endpoint) => write!(f, "{}", endpoint.uri()),
        }
    }
}

/// The sending half of a connection, as a stream uses it: whole local
/// protocol frames, each sent within `timeout`.
pub trait FrameSink: Send {
    fn send_frame(&mut self, kind: FrameKind, meta: &[u8], body: Vec<u8>, timeout: Duration)
    -> Result<(), ClientError>;
    /// Abandons the connection: the service drops the stream.
    fn close(&mut self);
}

/// The receiving half: the service's next frame, within `timeout`.
pub trait FrameSource: Send + 'static {
    fn recv_frame(&mut self, waiting_for: &str, timeout: Duration) -> Result<Frame, ClientError>;
}

/// One connection to the service: its two halves and how to cut it from
/// another thread (which wakes a thread blocked on either half).
pub struct Connection {
    pub sink: Box<dyn FrameSink>,
    pub source: Box<dyn FrameSource>,
    pub cut: Arc<dyn Fn() + Send + Sync>,
}

impl Connection {
    /// A connection over a connected Unix socket.
    pub fn unix(socket: UnixStream, body_limit: u64) -> Result<Self, ClientError> {
        let cut_socket = socket.try_clone().map_err(|e| ClientError::Io(e.to_string()))?;
        let (reader, writer) = unix::split(socket, body_limit).map_err(|e| ClientError::Io(e.to_string()))?;
        Ok(Self {
            sink: Box::new(writer),
            source: Box::new(reader),
            cut: Arc::new(move || {
                let _ = cut_socket.shutdown(Shutdown::Both);
            }),
        })
    }
}

impl FrameSink for FrameWriter {
    fn send_frame(
        &mut self,
        kind: FrameKind,
        meta: &[u8],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        self.send(kind, meta, &body, timeout)
            .map_err(|e| wire_error(e, "the service to read", timeout))
    }

    fn close(&mut self) {
        FrameWriter::close(self);
    }
}

impl FrameSource for FrameReader {
    fn recv_frame(&mut self, waiting_for: &str, timeout: Duration) -> Result<Frame, ClientError> {
        self.recv(timeout).map_err(|e| wire_error(e, waiting_for, timeout))
    }
}

/// What the reading thread hands over, in the order the service sent it.
enum Event {
    Ack(u64),
    Result(u64, RecordBatch),
    Status(StatusCode, String, Option<StreamStats>),
    Failed(ClientError),
}

/// Ends a stream from any thread, while its owner may be blocked in `push`
/// or `pull`: the connection is shut down, which wakes both at once, and the
/// stream then fails with `Cancelled`. The service drops a stream whose
/// connection closes.
#[derive(Clone)]
pub struct Canceller {
    cut: Arc<dyn Fn() + Send + Sync>,
    cancelled: Arc<AtomicBool>,
}

impl Canceller {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        (self.cut)();
    }
}

/// One open stream.
pub struct Stream {
    writer: Box<dyn FrameSink>,
    canceller: Canceller,
    events: Receiver<Event>,
    reader: Option<JoinHandle<()>>,
    spec: StreamSpec,
    sent: u64,
    acknowledged: u64,
    received: u64,
    results: VecDeque<RecordBatch>,
    ended: bool,
    /// Set once the final status arrived (`Ok`), or the stream failed; a
    /// failed stream repeats its error.
    outcome: Option<Result<(), ClientError>>,
    /// What the service measured, from its final status.
    stats: Option<StreamStats>,
}

impl Stream {
    /// Connects to the service at `endpoint` and opens a stream of `spec`.
    pub fn connect(endpoint: &Endpoint, spec: StreamSpec) -> Result<Self, ClientError> {
        match endpoint {
            Endpoint::Unix(socket) => Self::open(socket, spec),
            #[cfg(feature = "flight")]
            Endpoint::Flight(pool) => {
                let connection = super::flight_client::connect(pool, spec.timeout, spec.body_limit)?;
                Self::open_with(connection, spec)
            }
        }
    }

    /// Connects to the service on the Unix socket `socket` and opens a stream of `spec`.
    pub fn open(socket: &Path, spec: StreamSpec) -> Result<Self, ClientError> {
        let connection = unix::connect(socket, spec.timeout)
            .map_err(|e| ClientError::Io(format!("cannot connect to the executor at {}: {e}", socket.display())))?;
        Self::open_on(connection, spec)
    }

    /// Opens a stream on an established Unix connection (tests use socket pairs).
    pub fn open_on(connection: UnixStream, spec: StreamSpec) -> Result<Self, ClientError> {
        Self::open_with(Connection::unix(connection, spec.body_limit)?, spec)
    }

    /// Opens a stream on any connection.
    pub fn open_with(connection: Connection, spec: StreamSpec) -> Result<Self, ClientError> {
        let Connection {
            sink: mut writer,
            source: mut reader,
            cut,
        } = connection;
        let canceller = Canceller {
            cut,
            cancelled: Arc::new(AtomicBool::new(false)),
        };
        if let Err(error) = handshake(reader.as_mut(), writer.as_mut(), &spec) {
            writer.close();
            return Err(error);
        }
        let (sender, events) = mpsc::channel();
        let output = spec.output_schema.clone();
        let timeout = spec.timeout;
        let reader = thread::Builder::new()
            .name("flightpickle-stream-reader".into())
            .spawn(move || read_events(reader, output, timeout, sender))
            .map_err(|e| ClientError::Io(format!("cannot start the stream's reader thread: {e}")))?;
        Ok(Self {
            writer,
            canceller,
            events,
            reader: Some(reader),
            spec,
            sent: 0,
            acknowledged: 0,
            received: 0,
            results: VecDeque::new(),
            ended: false,
            outcome: None,
            stats: None,
        })
    }

    /// Sends one input batch, first waiting until the window has room.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), ClientError> {
        if self.ended {
            return Err(ClientError::Usage("a batch was pushed after the stream's end".into()));
        }
        let encoded = encode_batch(batch, &self.spec.input_schema).map_err(|e| ClientError::Usage(e.to_string()))?;
        while self.sent - self.acknowledged >= u64::from(self.spec.window) {
            self.next_event("an acknowledgement")?;
        }
        self.check_failed()?;
        let meta = codec::encode_batch_meta(self.sent, &encoded.ipc_message);
        self.send(FrameKind::Batch, &meta, encoded.body)?;
        self.sent += 1;
        Ok(())
    }

    /// Tells the service that every input batch was sent.
    pub fn finish(&mut self) -> Result<(), ClientError> {
        if !self.ended {
            self.check_failed()?;
            self.send(FrameKind::End, &codec::encode_u64_meta(self.sent), Vec::new())?;
            self.ended = true;
        }
        Ok(())
    }

    /// The next result batch, waiting for it; `None` once the service said
    /// every result was sent (only after `finish`).
    pub fn pull(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        loop {
            if let Some(batch) = self.results.pop_front() {
                return Ok(Some(batch));
            }
            match &self.outcome {
                Some(Ok(())) => return Ok(None),
                Some(Err(error)) => return Err(error.clone()),
                None => {}
            }
            self.next_event("a result")?;
        }
    }

    /// A result that already arrived, without waiting for one; `None` when
    /// none has. Lets a caller that must also feed input (a map function may
    /// want more batches before it yields) take results without blocking.
    pub fn try_pull(&mut self) -> Result<Option<RecordBatch>, ClientError> {
        while self.results.is_empty() && self.outcome.is_none() {
            // Disconnected needs no care here: the reader's last event (status
            // or failure) is delivered before it disconnects.
            let Ok(event) = self.events.try_recv() else { break };
            self.apply(event)?;
        }
        if let Some(batch) = self.results.pop_front() {
            return Ok(Some(batch));
        }
        match &self.outcome {
            Some(Err(error)) => Err(error.clone()),
            _ => Ok(None),
        }
    }

    /// What the service measured serving the stream, once its final status
    /// arrived (also a failed one); `None` before, or from a service that
    /// sends none.
    pub fn stats(&self) -> Option<StreamStats> {
        self.stats
    }

    /// A handle that cancels this stream from another thread.
    pub fn canceller(&self) -> Canceller {
        self.canceller.clone()
    }

    /// Abandons the stream: the connection closes, the service drops it.
    pub fn close(&mut self) {
        self.writer.close();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    fn send(&mut self, kind: FrameKind, meta: &[u8], body: Vec<u8>) -> Result<(), ClientError> {
        if let Err(error) = self.writer.send_frame(kind, meta, body, self.spec.timeout) {
            // A service that stopped reading usually said why: prefer its status.
            let failure = self.reason_for_broken_send().unwrap_or(error);
            return Err(self.fail(failure));
        }
        Ok(())
    }

    fn reason_for_broken_send(&mut self) -> Option<ClientError> {
        loop {
            match self.events.recv_timeout(Duration::from_secs(1)).ok()? {
                Event::Status(StatusCode::Ok, ..) => return None,
                Event::Status(code, message, _) => return Some(ClientError::Status(code, message)),
                Event::Failed(error) => return Some(error),
                Event::Ack(_) | Event::Result(..) => {}
            }
        }
    }

    fn check_failed(&self) -> Result<(), ClientError> {
        match &self.outcome {
            Some(Err(error)) => Err(error.clone()),
            Some(Ok(())) => Err(ClientError::Protocol(
                "the executor ended the stream before its input did".into(),
            )),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: ClientError) -> ClientError {
        // A cancelled stream's connection breaks: say why rather than how.
        let error = if self.canceller.cancelled.load(Ordering::SeqCst) {
            ClientError::Cancelled
        } else {
            error
        };
        self.outcome = Some(Err(error.clone()));
        error
    }

    /// Takes the reading thread's next event and applies it.
    fn next_event(&mut self, waiting_for: &str) -> Result<(), ClientError> {
        if let Some(outcome) = &self.outcome {
            return match outcome {
                Err(error) => Err(error.clone()),
                Ok(()) => Err(ClientError::Protocol(format!(
                    "the stream ended while waiting for {waiting_for}"
                ))),
            };
        }
        // The reading thread has its own deadline per frame; this one only
        // guards against it never reporting.
        let event = match self.events.recv_timeout(self.spec.timeout + Duration::from_secs(5)) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => {
                return Err(self.fail(ClientError::TimedOut(format!(
                    "waited {:?} for {waiting_for}",
                    self.spec.timeout
                ))));
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(self.fail(ClientError::WorkerLost("the stream's reader stopped".into())));
            }
        };
        self.apply(event)
    }

    fn apply(&mut self, event: Event) -> Result<(), ClientError> {
        match event {
            Event::Ack(seq) if seq == self.acknowledged && seq < self.sent => self.acknowledged += 1,
            Event::Ack(seq) => {
                let why = format!("acknowledgement of batch {seq} where {} was due", self.acknowledged);
                return Err(self.fail(ClientError::Protocol(why)));
            }
            Event::Result(seq, batch) if seq == self.received => {
                self.received += 1;
                self.results.push_back(batch);
            }
            Event::Result(seq, _) => {
                let why = format!("result {seq} arrived where {} was due", self.received);
                return Err(self.fail(ClientError::Protocol(why)));
            }
            Event::Status(StatusCode::Ok, ..) if !self.ended => {
                let why = "the executor said ok before the input ended".to_string();
                return Err(self.fail(ClientError::Protocol(why)));
            }
            Event::Status(StatusCode::Ok, _, stats) => {
                self.stats = stats;
                self.outcome = Some(Ok(()));
            }
            Event::Status(code, message, stats) => {
                self.stats = stats;
                return Err(self.fail(ClientError::Status(code, message)));
            }
            Event::Failed(error) => return Err(self.fail(error)),
        }
        Ok(())
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.close();
    }
}

/// `Open` with the digest only; the body when asked; then `Ready`.
fn handshake(reader: &mut dyn FrameSource, writer: &mut dyn FrameSink, spec: &StreamSpec) -> Result<(), ClientError> {
    let open = Open {
        version: PROTOCOL_VERSION,
        kind: spec.kind,
        row_errors: false,
        window: spec.window,
        digest: spec.digest.clone(),
        group_keys: spec.group_keys.clone(),
        input_schema: encode_schema(&spec.input_schema)?,
        output_schema: encode_schema(&spec.output_schema)?,
    };
    let send = |reader: &mut dyn FrameSource, writer: &mut dyn FrameSink, kind, meta: &[u8], body| {
        writer
            .send_frame(kind, meta, body, spec.timeout)
            .map_err(|error| why_the_send_broke(reader, error))
    };
    send(reader, writer, FrameKind::Open, &open.encode(), Vec::new())?;
    let mut reply = reader.recv_frame("the answer to open", spec.timeout)?;
    if reply.kind == FrameKind::NeedBody {
        send(reader, writer, FrameKind::Body, &[], spec.body.envelope()?)?;
        reply = reader.recv_frame("the answer to the function", spec.timeout)?;
    }
    match reply.kind {
        FrameKind::Ready => Ok(()),
        FrameKind::Status => {
            let (code, message) = codec::decode_status_meta(&reply.meta)?;
            Err(ClientError::Status(code, message))
        }
        other => Err(ClientError::Protocol(format!("expected ready, got {}", other.name()))),
    }
}

/// A service that stopped taking messages while the stream opened usually
/// said why (a status, or a pool that refused the token): that, when it
/// comes within a moment, rather than the broken send.
fn why_the_send_broke(reader: &mut dyn FrameSource, error: ClientError) -> ClientError {
    match reader.recv_frame("the reason the send failed", Duration::from_secs(1)) {
        Ok(frame) if frame.kind == FrameKind::Status => match codec::decode_status_meta(&frame.meta) {
            Ok((code, message)) => ClientError::Status(code, message),
            Err(_) => error,
        },
        Err(reason @ (ClientError::Unauthenticated(_) | ClientError::Io(_) | ClientError::Protocol(_))) => reason,
        _ => error,
    }
}

/// The reading thread: frames to events until the status or a failure.
fn read_events(mut reader: Box<dyn FrameSource>, output: SchemaRef, timeout: Duration, events: mpsc::Sender<Event>) {
    loop {
        let event = match reader
            .recv_frame("the executor", timeout)
            .and_then(|frame| to_event(frame, &output))
        {
            Ok(event) => event,
            Err(error) => Event::Failed(error),
        };
        let last = matches!(event, Event::Status(..) | Event::Failed(_));
        if events.send(event).is_err() || last {
            return;
        }
    }
}

fn to_event(frame: Frame, output: &SchemaRef) -> Result<Event, ClientError> {
    Ok(match frame.kind {
        FrameKind::Ack => Event::Ack(codec::decode_u64_meta(&frame.meta, "ack")?),
        FrameKind::Batch => {
            let (seq, message) = codec::decode_batch_meta(&frame.meta)?;
            Event::Result(seq, decode_batch(message, &frame.body, output)?)
        }
        FrameKind::Status => {
            let (code, message) = codec::decode_status_meta(&frame.meta)?;
            Event::Status(code, message, StreamStats::decode(&frame.body)?)
        }
        other => {
            return Err(ClientError::Protocol(format!(
                "unexpected {} from the executor",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
#[path = "client_tests.rs"]
pub(crate) mod tests;
