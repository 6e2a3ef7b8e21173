//! Executor streams for the Spark plugin's operators: `io.flightpickle.Native`'s
//! `stream*` methods over the core's blocking client.
//!
//! A stream lives behind an opaque handle (a pointer as a `long`) from
//! `streamOpen` to `streamClose`; the Java class `ExecutorStream` owns the
//! handle, never uses it after closing it and never from two threads at once,
//! and the mutex here makes a mistake in that a wait instead of a data race.
//! The one exception is `streamCancel`, which another thread calls while the
//! owner may be blocked inside the mutex: it uses only the stream's canceller,
//! and `ExecutorStream` never lets it overlap `streamClose`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flightpickle_core::command;
use flightpickle_core::transport::batch::shared;
use flightpickle_core::transport::client::{Canceller, Endpoint, FunctionBody, Stream, StreamSpec};
use flightpickle_core::transport::codec::EvalKind;

use crate::arrow_bridge;
use crate::error::NativeError;

/// What `streamOpen` needs, once its arguments are converted.
pub struct OpenRequest {
    /// A Unix socket path, or a remote pool's `grpc://` or `grpc+tls://` URI.
    pub endpoint: Vec<u8>,
    /// The remote pool's bearer token and TLS CA certificates (PEM), if any.
    pub token: Option<Vec<u8>>,
    pub tls_ca: Option<Vec<u8>>,
    pub kind: i32,
    /// The sealed function, or (when null) the path of the broadcast file
    /// that holds its command: exactly one of the two.
    pub envelope: Option<Vec<u8>>,
    pub broadcast_file: Option<Vec<u8>>,
    pub digest: Vec<u8>,
    /// Names of the group key columns (grouped kinds), each UTF-8 and ended
    /// by a NUL byte; empty for none.
    pub group_keys: Vec<u8>,
    pub input_schema: i64,
    pub output_schema: i64,
    pub window: i32,
    pub timeout_millis: i64,
    pub body_limit: i64,
}

fn utf8(bytes: Vec<u8>, what: &str) -> Result<String, NativeError> {
    String::from_utf8(bytes).map_err(|_| NativeError::invalid_argument(&format!("the {what} is not UTF-8")))
}

/// NUL-ended UTF-8 names, as `ExecutorStream` joins them (column names hold no NUL).
fn group_keys(joined: Vec<u8>) -> Result<Vec<String>, NativeError> {
    if joined.last().is_some_and(|last| *last != 0) {
        return Err(NativeError::invalid_argument(
            "the group key names do not end with a NUL byte",
        ));
    }
    joined
        .split(|byte| *byte == 0)
        .filter(|name| !name.is_empty())
        .map(|name| utf8(name.to_vec(), "group key name"))
        .collect()
}

fn positive(value: i64, what: &str) -> Result<u64, NativeError> {
    u64::try_from(value)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| NativeError::invalid_argument(&format!("the {what} must be positive, not {value}")))
}

pub fn open(request: OpenRequest) -> Result<i64, NativeError> {
    let kind = u8::try_from(request.kind)
        .ok()
        .and_then(EvalKind::from_byte)
        .ok_or_else(|| NativeError::invalid_argument(&format!("unknown evaluation kind {}", request.kind)))?;
    let input = arrow_bridge::import_schema(request.input_schema)?;
    let output = arrow_bridge::import_schema(request.output_schema)?;
    let spec = StreamSpec {
        kind,
        body: function_body(request.envelope, request.broadcast_file)?,
        digest: utf8(request.digest, "digest")?,
        input_schema: shared(input),
        output_schema: shared(output),
        window: u32::try_from(positive(i64::from(request.window), "window")?).expect("from an i32"),
        group_keys: group_keys(request.group_keys)?,
        timeout: Duration::from_millis(positive(request.timeout_millis, "timeout")?),
        body_limit: positive(request.body_limit, "body limit")?,
    };
    let token = request.token.map(|token| utf8(token, "bearer token")).transpose()?;
    let endpoint = Endpoint::parse(&utf8(request.endpoint, "executor address")?, token, request.tls_ca)?;
    let stream = Stream::connect(&endpoint, spec)?;
    let handle = Handle {
        canceller: stream.canceller(),
        stream: Mutex::new(stream),
    };
    Ok(Box::into_raw(Box::new(handle)) as usize as i64)
}

/// What a handle points at.
struct Handle {
    stream: Mutex<Stream>,
    canceller: Canceller,
}

/// The handle's target.
///
/// # Safety
/// `handle` is non-zero, came from `open` and is not closed yet (ExecutorStream guarantees both).
unsafe fn target(handle: i64) -> &'static Handle {
    // SAFETY: as the caller guarantees, the handle lives until `close`.
    unsafe { &*(handle as usize as *const Handle) }
}

fn function_body(envelope: Option<Vec<u8>>, broadcast_file: Option<Vec<u8>>) -> Result<FunctionBody, NativeError> {
    match (envelope, broadcast_file) {
        (Some(envelope), None) => Ok(FunctionBody::Envelope(envelope)),
        (None, Some(file)) => {
            let file = PathBuf::from(utf8(file, "broadcast file path")?);
            Ok(FunctionBody::Deferred(Arc::new(move || frame_of_broadcast_file(&file))))
        }
        _ => Err(NativeError::invalid_argument(
            "a stream takes either the sealed function or its broadcast file, not both or neither",
        )),
    }
}

/// The sealed frame in a large command's broadcast file, read when the
/// service asks for the function: once per service worker, not per task.
pub fn frame_of_broadcast_file(file: &Path) -> Result<Vec<u8>, String> {
    let data =
        std::fs::read(file).map_err(|e| format!("cannot read the command's broadcast file {}: {e}", file.display()))?;
    match command::sealed_frame_of_broadcast(&data) {
        Ok(Some(frame)) => Ok(frame.to_vec()),
        Ok(None) => Err(format!("the broadcast file {} holds no sealed command", file.display())),
        Err(error) => Err(format!("the broadcast file {}: {error}", file.display())),
    }
}

fn stream(handle: i64) -> Result<MutexGuard<'static, Stream>, NativeError> {
    if handle == 0 {
        return Err(NativeError::invalid_argument("the stream is closed"));
    }
    // SAFETY: a non-zero handle comes from `open` and is not closed yet
    // (ExecutorStream guarantees both).
    let mutex = unsafe { &target(handle).stream };
    // A panic while a stream was locked leaves it failed or closed, never
    // half-written (every operation is whole frames): still safe to use.
    Ok(mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Sends the batch the JVM exported; its buffers are back with the JVM when this returns.
pub fn push(handle: i64, array: i64, schema: i64) -> Result<(), NativeError> {
    let batch = arrow_bridge::import_batch(array, schema)?;
    let result = stream(handle)?.push(&batch);
    drop(batch);
    Ok(result?)
}

pub fn finish(handle: i64) -> Result<(), NativeError> {
    Ok(stream(handle)?.finish()?)
}

/// The next result into the JVM's structs. Waiting, false means every result
/// was pulled; not waiting, false means none has arrived yet.
pub fn pull(handle: i64, array: i64, schema: i64, wait: bool) -> Result<bool, NativeError> {
    let mut stream = stream(handle)?;
    let next = if wait { stream.pull()? } else { stream.try_pull()? };
    drop(stream);
    match next {
        Some(batch) => arrow_bridge::export_batch(batch, array, schema).map(|()| true),
        None => Ok(false),
    }
}

/// What the service measured, as `S<field>=<value>` entries once the final
/// status arrived; none before, or when the service sent none.
pub fn stats(handle: i64) -> Result<Vec<String>, NativeError> {
    Ok(stream(handle)?
        .stats()
        .map(|stats| {
            vec![
                format!("Sfunction_nanos={}", stats.function_nanos),
                format!("Sfunction_cached={}", stats.function_cached),
            ]
        })
        .unwrap_or_default())
}

/// Cancels the stream without waiting for its owner, who may be blocked in it.
pub fn cancel(handle: i64) -> Result<(), NativeError> {
    if handle == 0 {
        return Err(NativeError::invalid_argument("the stream is closed"));
    }
    // SAFETY: as in `stream`; ExecutorStream never cancels and closes at once.
    unsafe { target(handle) }.canceller.cancel();
    Ok(())
}

pub fn close(handle: i64) {
    if handle != 0 {
        // SAFETY: as in `stream`; after this the handle is never used again.
        let target = unsafe { Box::from_raw(handle as usize as *mut Handle) };
        drop(target);
    }
}
