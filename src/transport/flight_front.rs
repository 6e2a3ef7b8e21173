//! The Arrow Flight front of the executor service: a tonic gRPC server whose
//! `DoExchange` calls are forwarded, one call to one Unix-socket connection,
//! to the service's workers.
//!
//! Why a front that forwards rather than workers that speak gRPC: the workers
//! already share one listening socket, open functions once by digest, keep
//! deadlines and get replaced when they die. Forwarding keeps all of that in
//! one place for both transports, keeps gRPC (and its threads) out of the
//! single-threaded Python workers, and costs one local hop that moves bytes
//! without decoding them (`flight_map`).
//!
//! Each exchange gets two plain threads for its socket (one writes the
//! caller's frames, one reads the worker's): the local transport is blocking
//! by design, and an exchange lives as long as a task, so two threads per
//! open stream are cheap next to re-implementing the framing on tokio.

use std::io;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, HandshakeResponse,
    PollInfo, PutResult, SchemaResult, Ticket,
};
use bytes::Bytes;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use super::codec::{CodecError, FrameKind, StatusCode};
use super::flight_map::{
    ForwardFrame, body_follows, caller_frame, carries_schema, eager_body, first_document, grpc_status, open_from,
    service_reply, status_message, wants_stats,
};
use super::unix::{self, FrameReader, FrameWriter};
use super::wire::WireError;

/// Caller frames queued for the worker's socket, and replies queued for
/// gRPC: small, so that a slow side pushes back on the other (gRPC's own flow
/// control does the rest) instead of filling memory.
const UPLINK_DEPTH: usize = 4;
const DOWNLINK_DEPTH: usize = 16;
/// Room for a frame's metadata (schemas, sequence numbers) on top of its body
/// in one gRPC message.
const MESSAGE_OVERHEAD: u64 = 2 << 20;
/// HTTP/2 receive windows. The protocol's default (64 KiB) makes a caller
/// wait for a window update every 64 KiB of a batch; the window of batches
/// in flight, not HTTP/2, is what bounds memory here.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// How long the runtime's own threads get to stop after the grace period.
const RUNTIME_STOP: Duration = Duration::from_secs(1);

/// How the front is set up.
#[derive(Clone, Debug)]
pub struct FrontConfig {
    /// The workers' listening Unix socket.
    pub worker_socket: PathBuf,
    /// Largest batch body or sealed function accepted, in bytes.
    pub body_limit: u64,
    /// Longest wait for the caller's first message, and for the worker's next
    /// frame (as long as the local client waits for the service).
    pub idle_timeout: Duration,
    /// When set, every call needs `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// PEM certificate chain and private key, to serve TLS.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// A running front: its runtime, the port it listens on and its stop switch.
pub struct Front {
    runtime: Option<Runtime>,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

impl Front {
    /// Binds `address` (port 0 for any free port) and starts serving.
    pub fn start(address: SocketAddr, config: FrontConfig) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flightpickle-flight")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind(address))?;
        let port = listener.local_addr()?.port();
        let mut builder = Server::builder()
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW);
        if let Some((cert, key)) = &config.tls {
            let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
            builder = builder
                .tls_config(tls)
                .map_err(|e| io::Error::other(format!("bad TLS certificate or key: {e}")))?;
        }
        let limit = usize::try_from(config.body_limit.saturating_add(MESSAGE_OVERHEAD)).unwrap_or(usize::MAX);
        let token = TokenCheck(config.token.clone().map(Arc::from));
        let service = FlightServiceServer::new(Exchanges { config })
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit);
        let (stop, stopped) = oneshot::channel::<()>();
        let router = builder.add_service(InterceptedService::new(service, token));
        // No Nagle: a small message (an ack, a one-row batch) would otherwise
        // wait for the peer's delayed ACK, tens of milliseconds per round trip.
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = runtime.spawn(router.serve_with_incoming_shutdown(incoming, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            runtime: Some(runtime),
            port,
            stop: Some(stop),
            server: Some(server),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops taking calls and lets those in flight finish for at most
    /// `grace`; returns false when some had to be cut off.
    pub fn shutdown(&mut self, grace: Duration) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let (Some(server), Some(runtime)) = (self.server.take(), self.runtime.take()) else {
            return true;
        };
        // The timer is made inside the runtime, whose clock it needs.
        let finished = runtime.block_on(async { tokio::time::timeout(grace, server).await.is_ok() });
        // What is still running after the grace period is cut off: its
        // threads see their channels close and shut their sockets.
        runtime.shutdown_timeout(RUNTIME_STOP);
        finished
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.shutdown(Duration::ZERO);
    }
}

/// Refuses calls without the configured bearer token.
#[derive(Clone)]
struct TokenCheck(Option<Arc<str>>);

impl tonic::service::Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.0 else { return Ok(request) };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes())
            .unwrap_or_default();
        let expected = format!("Bearer {token}");
        if same_bytes(presented, expected.as_bytes()) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "a valid bearer token is required (authorization: Bearer <token>)",
            ))
        }
    }
}

/// Compares in time that does not depend on where the bytes differ, so
/// that timing does not reveal how much of a guessed token is right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;
type Replies = mpsc::Sender<Result<FlightData, Status>>;

struct Exchanges {
    config: FrontConfig,
}

impl Exchanges {
    /// One of the messages that open the stream, within the idle deadline.
    async fn opening_message(&self, incoming: &mut Streaming<FlightData>) -> Result<FlightData, Status> {
        match tokio::time::timeout(self.config.idle_timeout, incoming.message()).await {
            Err(_) => Err(Status::deadline_exceeded(
                "deadline: no first message within the idle deadline",
            )),
            Ok(Err(status)) => Err(status),
            Ok(Ok(None)) => Err(Status::invalid_argument(
                "protocol_error: the exchange ended before it was opened",
            )),
            Ok(Ok(Some(message))) => Ok(message),
        }
    }

    async fn connect_worker(&self) -> Result<UnixStream, Status> {
        let path = self.config.worker_socket.clone();
        let timeout = self.config.idle_timeout;
        let connected = tokio::task::spawn_blocking(move || unix::connect(&path, timeout)).await;
        match connected {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(Status::unavailable(format!(
                "unavailable: cannot reach the workers: {e}"
            ))),
            Err(e) => Err(Status::internal(format!("connecting to the workers failed: {e}"))),
        }
    }
}

#[tonic::async_trait]
impl FlightService for Exchanges {
    type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send + 'static>>;
    type ListFlightsStream = Pin<Box<dyn Stream<Item = Result<FlightInfo, Status>> + Send + 'static>>;
    type DoGetStream = ReplyStream;
    type DoPutStream = Pin<Box<dyn Stream<Item = Result<PutResult, Status>> + Send + 'static>>;
    type DoExchangeStream = ReplyStream;
    type DoActionStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::Result, Status>> + Send + 'static>>;
    type ListActionsStream = Pin<Box<dyn Stream<Item = Result<ActionType, Status>> + Send + 'static>>;

    async fn do_exchange(&self, request: Request<Streaming<FlightData>>) -> Result<Response<ReplyStream>, Status> {
        let mut incoming = request.into_inner();
        let first = self.opening_message(&mut incoming).await?;
        let refuse = |e: CodecError| Status::invalid_argument(format!("protocol_error: {e}"));
        first_document(&first).map_err(refuse)?;
        let second;
        let schema_message = if carries_schema(&first) {
            &first
        } else {
            second = self.opening_message(&mut incoming).await?;
            &second
        };
        let open = open_from(&first, schema_message).map_err(refuse)?;
        // A function sent with the opening goes to the worker inside Open,
        // which then never answers NeedBody: one round trip fewer.
        let envelope = if body_follows(&first).map_err(refuse)? {
            eager_body(&self.opening_message(&mut incoming).await?).map_err(refuse)?
        } else {
            Bytes::new()
        };
        let stats = wants_stats(&first).map_err(refuse)?;
        let socket = self.connect_worker().await?;
        let idle = self.config.idle_timeout;
        let (reader, writer) = unix::split(socket.try_clone()?, self.config.body_limit)?;
        let (uplink, frames) = mpsc::channel(UPLINK_DEPTH);
        let (replies, stream) = mpsc::channel(DOWNLINK_DEPTH);
        let socket = Arc::new(socket);
        let open_frame = ForwardFrame {
            kind: FrameKind::Open,
            meta: open.encode(),
            body: envelope,
        };
        uplink
            .send(open_frame)
            .await
            .map_err(|_| Status::internal("the uplink closed before the stream opened"))?;
        spawn_named("flightpickle-uplink", move || write_to_worker(writer, frames, idle))?;
        let downlink = Downlink {
            replies: replies.clone(),
            socket: socket.clone(),
            idle,
            output_schema: open.output_schema,
            stats,
        };
        spawn_named("flightpickle-downlink", move || downlink.run(reader))?;
        tokio::spawn(read_from_caller(incoming, uplink, replies, socket));
        Ok(Response::new(Box::pin(ReceiverStream::new(stream))))
    }

    async fn handshake(
        &self,
        _: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(unsupported())
    }
    async fn list_flights(&self, _: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(unsupported())
    }
    async fn get_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        Err(unsupported())
    }
    async fn poll_flight_info(&self, _: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(unsupported())
    }
    async fn get_schema(&self, _: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        Err(unsupported())
    }
    async fn do_get(&self, _: Request<Ticket>) -> Result<Response<ReplyStream>, Status> {
        Err(unsupported())
    }
    async fn do_put(&self, _: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        Err(unsupported())
    }
    async fn do_action(&self, _: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Err(unsupported())
    }
    async fn list_actions(&self, _: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Err(unsupported())
    }
}

fn unsupported() -> Status {
    Status::unimplemented("the flightpickle executor serves DoExchange only (see PROTOCOL.md)")
}

fn spawn_named(name: &str, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name(name.into()).spawn(work).map(drop)
}

/// Shuts the worker's socket both ways: the worker sees the stream end and
/// moves on, and a thread blocked on it wakes up.
fn abandon(socket: &UnixStream) {
    let _ = socket.shutdown(std::net::Shutdown::Both);
}

/// Sends the `Status` message and then the gRPC status that end a call.
async fn fail(replies: &Replies, code: StatusCode, message: &str) {
    let _ = replies.send(Ok(status_message(code, message))).await;
    let _ = replies.send(Err(grpc_status(code, message))).await;
}

/// Reads the caller's messages and queues them for the worker. A caller that
/// breaks the protocol or goes away (or closes its side before `End`, which
/// is how a caller abandons a stream) ends the worker's stream too.
async fn read_from_caller(
    mut incoming: Streaming<FlightData>,
    uplink: mpsc::Sender<ForwardFrame>,
    replies: Replies,
    socket: Arc<UnixStream>,
) {
    let mut ended = false;
    loop {
        let data = match incoming.message().await {
            Ok(Some(data)) => data,
            // The caller is done sending; the worker has `End`.
            Ok(None) if ended => return,
            Ok(None) | Err(_) => break,
        };
        match caller_frame(&data) {
            Ok(frame) => {
                ended |= frame.kind == FrameKind::End;
                if uplink.send(frame).await.is_err() {
                    return; // the worker side ended; its status is on the way
                }
            }
            Err(e) => {
                fail(&replies, StatusCode::ProtocolError, &e.to_string()).await;
                break;
            }
        }
    }
    abandon(&socket);
}

/// Writes the caller's frames to the worker. A failed write means the worker
/// closed the stream, after a status the downlink still reads, so it only stops.
fn write_to_worker(mut writer: FrameWriter, mut frames: mpsc::Receiver<ForwardFrame>, idle: Duration) {
    while let Some(frame) = frames.blocking_recv() {
        if writer.send(frame.kind, &frame.meta, &frame.body, idle).is_err() {
            return;
        }
    }
}

/// Reads the worker's frames and hands them to gRPC until the status.
struct Downlink {
    replies: Replies,
    socket: Arc<UnixStream>,
    idle: Duration,
    output_schema: Vec<u8>,
    /// The caller asked for the service's measurements.
    stats: bool,
}

impl Downlink {
    fn run(self, mut reader: FrameReader) {
        loop {
            let frame = match reader.recv(self.idle) {
                Ok(frame) => frame,
                Err(error) => {
                    let status = lost_status(&error, self.idle);
                    return self.end(status);
                }
            };
            let reply = match service_reply(&frame, &self.output_schema, self.stats) {
                Ok(reply) => reply,
                Err(e) => return self.end((StatusCode::ProtocolError, format!("the worker sent a bad frame: {e}"))),
            };
            for message in reply.messages {
                if self.replies.blocking_send(Ok(message)).is_err() {
                    return abandon(&self.socket); // the caller went away
                }
            }
            if let Some((code, message)) = reply.end {
                if code != StatusCode::Ok {
                    let _ = self.replies.blocking_send(Err(grpc_status(code, &message)));
                }
                return;
            }
        }
    }

    /// Ends the call with a status the front decided on, and the worker's stream with it.
    fn end(self, (code, message): (StatusCode, String)) {
        abandon(&self.socket);
        let _ = self.replies.blocking_send(Ok(status_message(code, &message)));
        let _ = self.replies.blocking_send(Err(grpc_status(code, &message)));
    }
}

fn lost_status(error: &WireError, idle: Duration) -> (StatusCode, String) {
    match error {
        WireError::TimedOut => (
            StatusCode::Deadline,
            format!("no answer from the executor's worker for {} s", idle.as_secs_f64()),
        ),
        WireError::Codec(e) => (StatusCode::ProtocolError, format!("the worker sent a bad frame: {e}")),
        WireError::Closed | WireError::Io(_) => (
            StatusCode::WorkerLost,
            format!("the stream's worker closed it without a status (it died?): {error}"),
        ),
    }
}

#[cfg(test)]
#[path = "flight_front_tests.rs"]
mod tests;
