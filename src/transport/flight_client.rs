//! The caller's side of a stream over Arrow Flight `DoExchange`, for a
//! remote pool of Python executors (`serve --listen grpc://…`): a
//! [`Connection`] whose halves turn local protocol frames into `FlightData`
//! and back (`flight_map`), so that `client::Stream` behaves the same over
//! both transports.
//!
//! The callers are blocking (JNI task threads), gRPC is async: one small
//! tokio runtime per process, made on first use, runs the calls; a caller
//! blocks on it for one send or one receive at a time, each bounded by the
//! stream's timeout and woken by a cancellation. Channels are kept per
//! pool (one HTTP/2 connection carries every stream to it), a bounded
//! number of them, and reconnect by themselves when a pool comes back.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::FlightData;
use arrow_flight::flight_service_client::FlightServiceClient;
use bytes::Bytes;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint as TonicEndpoint};
use tonic::{Code, Request, Response, Status, Streaming};

use super::client::{ClientError, Connection, FrameSink, FrameSource};
use super::codec::{FrameKind, StreamStats};
use super::flight_map::{caller_message, service_frame, service_stats, with_stats};
use super::wire::Frame;

/// Caller messages queued for gRPC: a couple, so that the window of batches
/// in flight (not this queue) bounds what waits.
const UPLINK_DEPTH: usize = 2;
/// Room for a message's metadata on top of its body, as the front allows.
const MESSAGE_OVERHEAD: u64 = 2 << 20;
/// HTTP/2 windows as the front's: batches of megabytes without a wait for a
/// window update every 64 KiB.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;
/// Channels kept at most. A process calls a handful of pools; one that is
/// handed ever new pool addresses must not keep a connection to each for
/// its whole life, so past this the cache starts afresh. Streams in flight
/// hold clones of their channel, so nothing they use is closed.
const CACHED_CHANNELS: usize = 32;

/// What makes two callers' channels interchangeable: the pool's address,
/// the CA its certificate must chain to, and the connect timeout.
type ChannelKey = (String, Option<Vec<u8>>, Duration);

/// A remote pool: its URI, the bearer token it expects and the CA
/// certificates its TLS certificate chains to.
#[derive(Clone)]
pub struct FlightEndpoint {
    uri: String,
    /// `http://` or `https://` with the same authority, as tonic wants it.
    channel_uri: String,
    host: String,
    token: Option<String>,
    tls_ca: Option<Vec<u8>>,
}

impl FlightEndpoint {
    /// `grpc://host:port` or `grpc+tls://host:port`; TLS needs `tls_ca`.
    pub fn parse(uri: &str, token: Option<String>, tls_ca: Option<Vec<u8>>) -> Result<Self, ClientError> {
        let usage = |why: &str| ClientError::Usage(format!("{uri:?} is not a pool address: {why}"));
        let (tls, authority) = match (uri.strip_prefix("grpc://"), uri.strip_prefix("grpc+tls://")) {
            (Some(authority), _) => (false, authority),
            (_, Some(authority)) => (true, authority),
            _ => return Err(usage("use grpc://host:port or grpc+tls://host:port")),
        };
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| usage("it names no port (grpc://host:port)"))?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) || authority.contains('/') {
            return Err(usage("expected host:port with a port from 1 to 65535 and no path"));
        }
        if tls && tls_ca.is_none() {
            return Err(usage(
                "grpc+tls needs the CA certificates (PEM) that sign the pool's certificate",
            ));
        }
        if !tls && tls_ca.is_some() {
            return Err(usage("a TLS CA is given but the address is not grpc+tls://"));
        }
        if token
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.chars().any(char::is_control))
        {
            return Err(ClientError::Usage(
                "the bearer token is empty or has control characters".into(),
            ));
        }
        Ok(Self {
            uri: uri.to_string(),
            channel_uri: format!("{}://{authority}", if tls { "https" } else { "http" }),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            token,
            tls_ca,
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }
}

/// The process's runtime for Flight calls, made on first use. Two threads:
/// they only move bytes between sockets and the callers' queues.
fn runtime() -> Result<&'static Runtime, ClientError> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("flightpickle-flight-client")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| ClientError::Io(format!("cannot start the Flight client's runtime: {e}")))
}

/// The channels kept for reuse.
fn cached_channels() -> MutexGuard<'static, HashMap<ChannelKey, Channel>> {
    static CHANNELS: OnceLock<Mutex<HashMap<ChannelKey, Channel>>> = OnceLock::new();
    CHANNELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// The channel to a pool, shared by every stream to it.
fn channel(pool: &FlightEndpoint, runtime: &Runtime, timeout: Duration) -> Result<Channel, ClientError> {
    let key = (pool.channel_uri.clone(), pool.tls_ca.clone(), timeout);
    let mut channels = cached_channels();
    if let Some(channel) = channels.get(&key) {
        return Ok(channel.clone());
    }
    let bad = |e: tonic::transport::Error| ClientError::Usage(format!("{}: {e}", pool.uri));
    let mut endpoint = TonicEndpoint::from_shared(pool.channel_uri.clone())
        .map_err(bad)?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    if let Some(ca) = &pool.tls_ca {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name(pool.host.clone());
        endpoint = endpoint.tls_config(tls).map_err(bad)?;
    }
    // Connects on the first call, within the runtime; a pool that is down
    // fails that call as unavailable, and a later one reconnects.
    let _context = runtime.enter();
    let channel = endpoint.connect_lazy();
    if channels.len() >= CACHED_CHANNELS {
        channels.clear();
    }
    channels.insert(key, channel.clone());
    Ok(channel)
}

/// Starts a `DoExchange` call to `pool`. The call's first reply comes only
/// once the pool read the opening messages, which the stream sends next:
/// the source waits for it on its first receive.
pub fn connect(pool: &FlightEndpoint, timeout: Duration, body_limit: u64) -> Result<Connection, ClientError> {
    let runtime = runtime()?;
    let limit = usize::try_from(body_limit.saturating_add(MESSAGE_OVERHEAD)).unwrap_or(usize::MAX);
    let mut client = FlightServiceClient::new(channel(pool, runtime, timeout)?)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    let (uplink, messages) = mpsc::channel(UPLINK_DEPTH);
    let (cut, cancelled) = watch::channel(false);
    let mut request = Request::new(Uplink::new(messages, cancelled.clone()));
    if let Some(token) = &pool.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| ClientError::Usage("the bearer token is not a valid header value".into()))?;
        request.metadata_mut().insert("authorization", value);
    }
    let call = runtime.spawn(async move { client.do_exchange(request).await });
    let cut = Arc::new(cut);
    let handle = runtime.handle().clone();
    let uri: Arc<str> = Arc::from(pool.uri.as_str());
    let sink = FlightSink {
        uplink: Some(uplink),
        runtime: handle.clone(),
        cancelled: cancelled.clone(),
        cut: cut.clone(),
    };
    let source = FlightSource {
        replies: Replies::Pending(call),
        runtime: handle,
        cancelled,
        uri,
    };
    Ok(Connection {
        sink: Box::new(sink),
        source: Box::new(source),
        cut: Arc::new(move || {
            let _ = cut.send(true);
        }),
    })
}

/// The call's request body: the caller's messages until the connection is
/// cut. A cut before `End` ends the body early, which the front takes as
/// the caller abandoning the stream (it drops the worker's stream at once,
/// even while the function is still running).
struct Uplink {
    messages: mpsc::Receiver<FlightData>,
    cut: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Uplink {
    fn new(messages: mpsc::Receiver<FlightData>, mut cancelled: watch::Receiver<bool>) -> Self {
        let cut = Box::pin(async move {
            let _ = cancelled.wait_for(|cut| *cut).await;
        });
        Self { messages, cut }
    }
}

impl tokio_stream::Stream for Uplink {
    type Item = FlightData;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<FlightData>> {
        if self.cut.as_mut().poll(context).is_ready() {
            return Poll::Ready(None);
        }
        self.messages.poll_recv(context)
    }
}

/// Why a blocking wait on the runtime ended without its result.
enum Interrupted {
    TimedOut,
    Cancelled,
}

/// Runs `work` on the runtime from a caller's thread, for at most `timeout`,
/// or until the connection is cut.
fn wait<F: Future>(
    runtime: &Handle,
    cancelled: &watch::Receiver<bool>,
    timeout: Duration,
    work: F,
) -> Result<F::Output, Interrupted> {
    let mut cancelled = cancelled.clone();
    runtime.block_on(async move {
        let mut work = pin!(tokio::time::timeout(timeout, work));
        let mut cut = pin!(cancelled.wait_for(|cut| *cut));
        std::future::poll_fn(|context| {
            if let Poll::Ready(done) = work.as_mut().poll(context) {
                return Poll::Ready(done.map_err(|_| Interrupted::TimedOut));
            }
            // A closed sender (the connection dropped) counts as a cut too.
            if cut.as_mut().poll(context).is_ready() {
                return Poll::Ready(Err(Interrupted::Cancelled));
            }
            Poll::Pending
        })
        .await
    })
}

fn interrupted(why: Interrupted, waiting_for: &str, timeout: Duration) -> ClientError {
    match why {
        Interrupted::TimedOut => ClientError::TimedOut(format!("waited {timeout:?} for {waiting_for}")),
        Interrupted::Cancelled => ClientError::Cancelled,
    }
}

struct FlightSink {
    /// Dropped after `End`: the caller half-closes its side.
    uplink: Option<mpsc::Sender<FlightData>>,
    runtime: Handle,
    cancelled: watch::Receiver<bool>,
    cut: Arc<watch::Sender<bool>>,
}

impl FrameSink for FlightSink {
    fn send_frame(
        &mut self,
        kind: FrameKind,
        meta: &[u8],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let message = caller_message(kind, meta, Bytes::from(body))?;
        let uplink = self
            .uplink
            .as_ref()
            .ok_or_else(|| ClientError::Usage("a message was sent after the stream's end".into()))?;
        match wait(&self.runtime, &self.cancelled, timeout, uplink.send(message)) {
            Ok(Ok(())) => {}
            // The call is over; the source has (or is about to have) why.
            Ok(Err(_)) => return Err(ClientError::WorkerLost("the call ended while sending".into())),
            Err(why) => return Err(interrupted(why, "the pool to take a message", timeout)),
        }
        if kind == FrameKind::End {
            self.uplink = None;
        }
        Ok(())
    }

    fn close(&mut self) {
        self.uplink = None;
        let _ = self.cut.send(true);
    }
}

/// The call's replies: first the call itself, until the pool answered.
enum Replies {
    Pending(JoinHandle<Result<Response<Streaming<FlightData>>, Status>>),
    // Boxed: a stream is far larger than the call's handle, and the box is
    // made once per stream.
    Open(Box<Streaming<FlightData>>),
}

struct FlightSource {
    replies: Replies,
    runtime: Handle,
    cancelled: watch::Receiver<bool>,
    uri: Arc<str>,
}

impl FlightSource {
    /// The reply stream, once the pool accepted the call.
    fn open_replies(
        &mut self,
        waiting_for: &str,
        timeout: Duration,
    ) -> Result<&mut Streaming<FlightData>, ClientError> {
        if let Replies::Pending(call) = &mut self.replies {
            let answer = wait(&self.runtime, &self.cancelled, timeout, call)
                .map_err(|why| interrupted(why, waiting_for, timeout))?;
            let response = answer
                .map_err(|e| ClientError::Io(format!("the Flight call to {} failed: {e}", self.uri)))?
                .map_err(|status| call_failed(&status, &self.uri))?;
            self.replies = Replies::Open(Box::new(response.into_inner()));
        }
        match &mut self.replies {
            Replies::Open(replies) => Ok(replies.as_mut()),
            Replies::Pending(_) => unreachable!("opened above"),
        }
    }

    /// The pool's next message on the call.
    fn next_message(&mut self, waiting_for: &str, timeout: Duration) -> Result<FlightData, ClientError> {
        let runtime = self.runtime.clone();
        let cancelled = self.cancelled.clone();
        let uri = self.uri.clone();
        let replies = self.open_replies(waiting_for, timeout)?;
        let reply = wait(&runtime, &cancelled, timeout, replies.message())
            .map_err(|why| interrupted(why, waiting_for, timeout))?;
        match reply {
            Ok(Some(data)) => Ok(data),
            Ok(None) => Err(ClientError::WorkerLost(format!(
                "the pool at {uri} ended the call without a status while the caller waited for {waiting_for}"
            ))),
            Err(status) => Err(call_failed(&status, &uri)),
        }
    }
}

impl FrameSource for FlightSource {
    fn recv_frame(&mut self, waiting_for: &str, timeout: Duration) -> Result<Frame, ClientError> {
        let mut stats: Option<StreamStats> = None;
        loop {
            let data = self.next_message(waiting_for, timeout)?;
            if let Some(measured) = service_stats(&data)? {
                stats = Some(measured);
            } else if let Some(frame) = service_frame(&data)? {
                return Ok(with_stats(frame, stats)?);
            }
        }
    }
}

impl Drop for FlightSource {
    fn drop(&mut self) {
        if let Replies::Pending(call) = &self.replies {
            call.abort();
        }
    }
}

/// The caller's error for a gRPC status that came without a `Status`
/// message: the pool (or the network) refused or broke the call.
fn call_failed(status: &Status, uri: &str) -> ClientError {
    let message = status.message();
    match status.code() {
        Code::Unauthenticated => ClientError::Unauthenticated(format!(
            "the executor pool at {uri} refused this caller's bearer token: {message}"
        )),
        Code::Unavailable => {
            let tls = if uri.starts_with("grpc+tls://") {
                ", with a certificate that the given CA signs"
            } else {
                ""
            };
            ClientError::Io(format!(
                "cannot reach the executor pool at {uri}: {message} (is it running at that address{tls}?)"
            ))
        }
        Code::DeadlineExceeded => ClientError::TimedOut(format!("the pool at {uri}: {message}")),
        Code::Aborted | Code::Cancelled => ClientError::WorkerLost(format!("the pool at {uri}: {message}")),
        Code::InvalidArgument => ClientError::Protocol(format!("the pool at {uri} refused the stream: {message}")),
        code => ClientError::Io(format!("the Flight call to {uri} failed ({code:?}): {message}")),
    }
}

#[cfg(test)]
#[path = "flight_client_tests.rs"]
mod tests;
