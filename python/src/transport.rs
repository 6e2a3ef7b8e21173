//! Bindings of the core's executor transport: a listening socket and a
//! connection that sends and receives protocol messages.
//!
//! Socket I/O and Arrow IPC encoding run with the interpreter lock released;
//! record batches cross into and out of Python through the Arrow C data
//! interface (arrow-pyarrow: `__arrow_c_array__` capsules in, a C stream that
//! pyarrow imports out), so their buffers are shared, not copied. Failures come out as
//! `flightpickle._native.TransportError(kind, message)`, kind one of
//! `closed`, `timeout`, `protocol`, `io`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arrow_data::ArrayData;
use arrow_pyarrow::{FromPyArrow, ToPyArrow};
use arrow_schema::Schema;
use flightpickle_core::transport::batch::{BatchEncoder, decode_batch_data, decode_schema, encode_schema, shared};
use flightpickle_core::transport::codec::{
    self, CodecError, EvalKind, FrameKind, Open, PROTOCOL_VERSION, StatusCode, StreamStats,
};
use flightpickle_core::transport::unix::{self, FrameReader, FrameWriter, Listener as CoreListener};
use flightpickle_core::transport::wire::{Frame, OutgoingFrame, WireError};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::batch_handoff::{IncomingSchema, Outgoing, SendImporter};

create_exception!(
    _native,
    TransportError,
    PyException,
    "An executor connection failed: args are (kind, message)."
);

fn transport_error(error: WireError) -> PyErr {
    let kind = match &error {
        WireError::Closed => "closed",
        WireError::TimedOut => "timeout",
        WireError::Codec(_) => "protocol",
        WireError::Io(_) => "io",
    };
    TransportError::new_err((kind, error.to_string()))
}

fn protocol_error(error: CodecError) -> PyErr {
    transport_error(WireError::Codec(error))
}

fn io_error(error: std::io::Error) -> PyErr {
    transport_error(WireError::Io(error))
}

fn seconds(timeout: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(timeout).map_err(|_| PyValueError::new_err(format!("bad timeout {timeout}")))
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a frame half-parsed in these: every
    // operation on them is a whole read or write, so a poisoned lock is usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A listening Unix socket, shared by the executor's worker processes.
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct Listener {
    inner: CoreListener,
    body_limit: u64,
}

#[pymethods]
impl Listener {
    #[staticmethod]
    #[pyo3(signature = (path, *, body_limit))]
    fn bind(path: PathBuf, body_limit: u64) -> PyResult<Self> {
        Ok(Self {
            inner: CoreListener::bind(&path).map_err(io_error)?,
            body_limit,
        })
    }

    /// Takes over a listening socket inherited from the parent process.
    #[staticmethod]
    #[pyo3(signature = (fd, *, body_limit))]
    fn adopt(fd: i32, body_limit: u64) -> PyResult<Self> {
        // SAFETY: the executor's supervisor passes each worker exactly one
        // inherited listening socket, which nothing else in the worker owns.
        let inner = unsafe { CoreListener::from_raw_fd(fd) }.map_err(io_error)?;
        Ok(Self { inner, body_limit })
    }

    fn fileno(&self) -> i32 {
        self.inner.raw_fd()
    }

    /// The next connection, or None after `timeout` seconds without one.
    fn accept(&self, py: Python<'_>, timeout: f64) -> PyResult<Option<Connection>> {
        let timeout = seconds(timeout)?;
        let stream = py.detach(|| self.inner.accept(timeout)).map_err(io_error)?;
        stream.map(|s| Connection::from_stream(s, self.body_limit)).transpose()
    }
}

/// One end of an executor stream.
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct Connection {
    reader: Mutex<FrameReader>,
    writer: Mutex<FrameWriter>,
    /// Schema of the batches this end receives, and of those it sends.
    incoming: Mutex<Option<Arc<IncomingSchema>>>,
    outgoing: Mutex<Option<BatchEncoder>>,
    importer: SendImporter,
}

impl Connection {
    fn from_stream(stream: std::os::unix::net::UnixStream, body_limit: u64) -> PyResult<Self> {
        let (reader, writer) = unix::split(stream, body_limit).map_err(io_error)?;
        Ok(Self {
            reader: Mutex::new(reader),
            writer: Mutex::new(writer),
            incoming: Mutex::new(None),
            outgoing: Mutex::new(None),
            importer: SendImporter::default(),
        })
    }

    fn send(&self, py: Python<'_>, kind: FrameKind, meta: &[u8], body: &[u8], timeout: f64) -> PyResult<()> {
        let timeout = seconds(timeout)?;
        py.detach(|| locked(&self.writer).send(kind, meta, body, timeout))
            .map_err(transport_error)
    }

    fn set_outgoing(&self, schema: Schema) -> PyResult<()> {
        let encoder = BatchEncoder::new(shared(schema)).map_err(|e| PyValueError::new_err(e.to_string()))?;
        *locked(&self.outgoing) = Some(encoder);
        Ok(())
    }

    /// The next frame and, for a batch, the batch decoded with the incoming
    /// schema, which comes along so that the same schema also hands it to pyarrow.
    fn receive_frame(&self, py: Python<'_>, timeout: Duration) -> PyResult<(Frame, Option<Received>)> {
        let incoming = locked(&self.incoming).clone();
        py.detach(|| {
            let frame = locked(&self.reader).recv(timeout)?;
            if frame.kind != FrameKind::Batch {
                return Ok((frame, None));
            }
            let schema =
                incoming.ok_or_else(|| CodecError::Invalid("a batch arrived before the stream was opened".into()))?;
            let (seq, message) = codec::decode_batch_meta(&frame.meta)?;
            let batch = decode_batch_data(message, &frame.body, &schema.arrow)?;
            Ok((frame, Some(Received { seq, batch, schema })))
        })
        .map_err(transport_error)
    }
}

/// Why a batch was not sent: it does not fit the stream (a `ValueError`,
/// nothing was written), or the connection failed.
enum SendError {
    Invalid(CodecError),
    Wire(WireError),
}

impl SendError {
    fn into_py(self) -> PyErr {
        match self {
            Self::Invalid(e) => PyValueError::new_err(e.to_string()),
            Self::Wire(e) => transport_error(e),
        }
    }
}

/// A batch as it was received: its sequence number, its columns as one
/// struct array's data, and the schema it was decoded with.
struct Received {
    seq: u64,
    batch: ArrayData,
    schema: Arc<IncomingSchema>,
}

/// A status's stats as Python sees them: a dict, or None when it has none.
fn stats_object<'py>(py: Python<'py>, stats: Option<StreamStats>) -> PyResult<Option<Bound<'py, PyDict>>> {
    stats
        .map(|stats| {
            let dict = PyDict::new(py);
            dict.set_item("function_nanos", stats.function_nanos)?;
            dict.set_item("function_cached", stats.function_cached)?;
            Ok(dict)
        })
        .transpose()
}

fn open_dict<'py>(py: Python<'py>, open: &Open) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("version", open.version)?;
    dict.set_item("kind", open.kind.name())?;
    dict.set_item("row_errors", open.row_errors)?;
    dict.set_item("window", open.window)?;
    dict.set_item("digest", &open.digest)?;
    dict.set_item("group_keys", &open.group_keys)?;
    let input = decode_schema(&open.input_schema).map_err(protocol_error)?;
    let output = decode_schema(&open.output_schema).map_err(protocol_error)?;
    dict.set_item("input_schema", input.to_pyarrow(py)?)?;
    dict.set_item("output_schema", output.to_pyarrow(py)?)?;
    Ok(dict)
}

fn body_or_none<'py>(py: Python<'py>, frame: &Frame) -> Bound<'py, PyAny> {
    if frame.body.is_empty() {
        py.None().into_bound(py)
    } else {
        PyBytes::new(py, frame.body.as_slice()).into_any()
    }
}

#[pymethods]
impl Connection {
    #[staticmethod]
    #[pyo3(signature = (path, *, timeout, body_limit))]
    fn connect(py: Python<'_>, path: PathBuf, timeout: f64, body_limit: u64) -> PyResult<Self> {
        let timeout = seconds(timeout)?;
        let stream = py.detach(|| unix::connect(&path, timeout)).map_err(io_error)?;
        Self::from_stream(stream, body_limit)
    }

    /// Sets the schema batches received on this connection are decoded with.
    fn set_incoming_schema(&self, py: Python<'_>, schema: &Bound<'_, PyAny>) -> PyResult<()> {
        let schema = IncomingSchema::new(py, Schema::from_pyarrow_bound(schema)?)?;
        *locked(&self.incoming) = Some(Arc::new(schema));
        Ok(())
    }

    /// Sets the schema every batch sent on this connection must have.
    fn set_outgoing_schema(&self, schema: &Bound<'_, PyAny>) -> PyResult<()> {
        self.set_outgoing(Schema::from_pyarrow_bound(schema)?)
    }

    /// The next message as a tuple whose first item names it: ("open", dict,
    /// body or None), ("need_body",), ("body", bytes), ("ready",), ("batch",
    /// seq, RecordBatch), ("ack", seq), ("end", count), ("status", code, text, stats): stats is a
    /// dict of what the service measured (`function_nanos`, `function_cached`),
    /// or None when the status carried none.
    fn recv<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyTuple>> {
        let (frame, received) = self.receive_frame(py, seconds(timeout)?)?;
        let name = frame.kind.name();
        match frame.kind {
            FrameKind::Open => {
                let open = Open::decode(&frame.meta).map_err(protocol_error)?;
                (name, open_dict(py, &open)?, body_or_none(py, &frame)).into_pyobject(py)
            }
            FrameKind::Batch => {
                let Received { seq, batch, schema } = received.expect("decoded with the frame");
                (name, seq, schema.to_pyarrow(py, batch)?).into_pyobject(py)
            }
            FrameKind::Body => (name, PyBytes::new(py, frame.body.as_slice())).into_pyobject(py),
            FrameKind::Ack | FrameKind::End => {
                let value = codec::decode_u64_meta(&frame.meta, name).map_err(protocol_error)?;
                (name, value).into_pyobject(py)
            }
            FrameKind::Status => {
                let (code, message) = codec::decode_status_meta(&frame.meta).map_err(protocol_error)?;
                let stats = StreamStats::decode(frame.body.as_slice()).map_err(protocol_error)?;
                (name, code.name(), message, stats_object(py, stats)?).into_pyobject(py)
            }
            FrameKind::NeedBody | FrameKind::Ready => (name,).into_pyobject(py),
        }
    }

    /// Opens a stream; also sets the outgoing schema to `input_schema` and
    /// the incoming one to `output_schema`.
    #[pyo3(signature = (*, kind, digest, input_schema, output_schema, window, row_errors, group_keys, envelope, timeout))]
    #[allow(clippy::too_many_arguments)]
    fn send_open(
        &self,
        py: Python<'_>,
        kind: &str,
        digest: String,
        input_schema: &Bound<'_, PyAny>,
        output_schema: &Bound<'_, PyAny>,
        window: u32,
        row_errors: bool,
        group_keys: Vec<String>,
        envelope: Option<&[u8]>,
        timeout: f64,
    ) -> PyResult<()> {
        let kind = EvalKind::from_name(kind).ok_or_else(|| PyValueError::new_err(format!("unknown kind {kind:?}")))?;
        let input = Schema::from_pyarrow_bound(input_schema)?;
        let output = Schema::from_pyarrow_bound(output_schema)?;
        let invalid = |e: CodecError| PyValueError::new_err(e.to_string());
        let open = Open {
            version: PROTOCOL_VERSION,
            kind,
            row_errors,
            window,
            digest,
            group_keys,
            input_schema: encode_schema(&input).map_err(invalid)?,
            output_schema: encode_schema(&output).map_err(invalid)?,
        };
        self.set_outgoing(input)?;
        *locked(&self.incoming) = Some(Arc::new(IncomingSchema::new(py, output)?));
        self.send(
            py,
            FrameKind::Open,
            &open.encode(),
            envelope.unwrap_or_default(),
            timeout,
        )
    }

    fn send_body(&self, py: Python<'_>, envelope: &[u8], timeout: f64) -> PyResult<()> {
        self.send(py, FrameKind::Body, &[], envelope, timeout)
    }

    fn send_need_body(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        self.send(py, FrameKind::NeedBody, &[], &[], timeout)
    }

    fn send_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        self.send(py, FrameKind::Ready, &[], &[], timeout)
    }

    /// Sends a batch, which must have the types of the outgoing schema; with
    /// `ack`, also `Ack ack` right after it in the same write.
    #[pyo3(signature = (seq, batch, timeout, *, ack = None))]
    fn send_batch(
        &self,
        py: Python<'_>,
        seq: u64,
        batch: &Bound<'_, PyAny>,
        timeout: f64,
        ack: Option<u64>,
    ) -> PyResult<()> {
        if locked(&self.outgoing).is_none() {
            return Err(PyValueError::new_err("no outgoing schema set on this connection"));
        }
        let batch = self.importer.import(batch)?;
        let timeout = seconds(timeout)?;
        // Encoding and writing under one release of the interpreter lock:
        // each release and re-take is a cost a small batch notices.
        py.detach(|| {
            let flat_columns;
            let encoded;
            // The arrays' own buffers go to the socket: no copy into one body.
            let mut body = Vec::new();
            let meta = {
                let mut outgoing = locked(&self.outgoing);
                let encoder = outgoing
                    .as_mut()
                    .ok_or_else(|| SendError::Invalid(CodecError::Invalid("no outgoing schema".into())))?;
                match &batch {
                    Outgoing::Flat(export, schema) => {
                        flat_columns = export.columns();
                        let message = encoder
                            .encode_flat(schema, export.rows(), &flat_columns, &mut body)
                            .map_err(SendError::Invalid)?;
                        codec::encode_batch_meta(seq, message)
                    }
                    Outgoing::Batch(batch) => {
                        encoded = encoder.encode(batch).map_err(SendError::Invalid)?;
                        body = encoded.body_slices();
                        codec::encode_batch_meta(seq, &encoded.ipc_message)
                    }
                }
            };
            let ack_meta = ack.map(codec::encode_u64_meta);
            let batch_frame = OutgoingFrame {
                kind: FrameKind::Batch,
                meta: &meta,
                body: &body,
            };
            let ack_frame = ack_meta.as_deref().map(|meta| OutgoingFrame {
                kind: FrameKind::Ack,
                meta,
                body: &[],
            });
            let frames = [Some(batch_frame), ack_frame];
            let frames: Vec<_> = frames.into_iter().flatten().collect();
            locked(&self.writer)
                .send_frames(&frames, timeout)
                .map_err(SendError::Wire)
        })
        .map_err(SendError::into_py)
    }

    fn send_ack(&self, py: Python<'_>, seq: u64, timeout: f64) -> PyResult<()> {
        self.send(py, FrameKind::Ack, &codec::encode_u64_meta(seq), &[], timeout)
    }

    fn send_end(&self, py: Python<'_>, count: u64, timeout: f64) -> PyResult<()> {
        self.send(py, FrameKind::End, &codec::encode_u64_meta(count), &[], timeout)
    }

    /// Sends the final status; with `function_nanos` and `function_cached`
    /// (both or neither), the stream's stats in its body.
    #[pyo3(signature = (code, message, timeout, *, function_nanos = None, function_cached = None))]
    fn send_status(
        &self,
        py: Python<'_>,
        code: &str,
        message: &str,
        timeout: f64,
        function_nanos: Option<u64>,
        function_cached: Option<bool>,
    ) -> PyResult<()> {
        let code =
            StatusCode::from_name(code).ok_or_else(|| PyValueError::new_err(format!("unknown status {code:?}")))?;
        let stats = match (function_nanos, function_cached) {
            (Some(function_nanos), Some(function_cached)) => StreamStats {
                function_nanos,
                function_cached,
            }
            .encode(),
            (None, None) => Vec::new(),
            _ => return Err(PyValueError::new_err("function_nanos and function_cached go together")),
        };
        self.send(
            py,
            FrameKind::Status,
            &codec::encode_status_meta(code, message),
            &stats,
            timeout,
        )
    }

    /// Sends raw bytes, for tests of how the peer handles malformed input.
    fn send_raw(&self, py: Python<'_>, data: &[u8], timeout: f64) -> PyResult<()> {
        let timeout = seconds(timeout)?;
        py.detach(|| locked(&self.writer).send_raw(data, timeout))
            .map_err(transport_error)
    }

    fn close(&self) {
        locked(&self.writer).close();
    }

    /// The socket's descriptor, valid while this connection lives (closing
    /// it shuts the socket down; the descriptor goes with the object).
    fn fileno(&self) -> i32 {
        locked(&self.writer).raw_fd()
    }
}
