//! Bindings of the core's envelope: seal, open and read sealed payloads.
//!
//! Refusals come out as `flightpickle._native.EnvelopeRefusal(kind, message)`;
//! `flightpickle.sealing` turns each kind into its own exception class.

use std::collections::HashMap;

use flightpickle_core::envelope::{
    self, EnvelopeError, Header, OpenOptions, PythonImplementation, PythonVersion, SealOptions, SigningKey, WireTarget,
};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

create_exception!(
    _native,
    EnvelopeRefusal,
    PyException,
    "A sealed payload was refused: args are (kind, message)."
);

/// The writing or reading Python, as `(implementation name, major, minor)`.
type PythonTriple<'a> = (&'a str, u8, u8);

fn python_version((name, major, minor): PythonTriple<'_>) -> PythonVersion {
    PythonVersion {
        implementation: PythonImplementation::from_name(name),
        major,
        minor,
    }
}

fn refusal(error: EnvelopeError) -> PyErr {
    let kind = error.kind();
    EnvelopeRefusal::new_err((kind, error.to_string()))
}

/// Wraps pickle bytes in a frame.
#[pyfunction]
#[pyo3(signature = (pickle, *, python, target, protocol, writer_version, compression_threshold, compression_level, key_id=None, key=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_pickle<'py>(
    py: Python<'py>,
    pickle: &[u8],
    python: PythonTriple<'_>,
    target: &str,
    protocol: u8,
    writer_version: &str,
    compression_threshold: Option<usize>,
    compression_level: i32,
    key_id: Option<&str>,
    key: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let target =
        WireTarget::from_name(target).ok_or_else(|| PyValueError::new_err(format!("unknown target {target:?}")))?;
    let key = match (key_id, key) {
        (Some(id), Some(secret)) => Some(SigningKey { id, secret }),
        (None, None) => None,
        _ => return Err(PyValueError::new_err("a signing key needs both a key id and a secret")),
    };
    let options = SealOptions {
        python: python_version(python),
        target,
        protocol,
        writer_version,
        compression_threshold,
        compression_level,
        key,
    };
    // Compression and hashing of a large payload need no Python objects.
    let frame = py.detach(|| envelope::seal(pickle, &options)).map_err(refusal)?;
    Ok(PyBytes::new(py, &frame))
}

/// Verifies a frame. Returns `(header, body_start, pickle)`: `pickle` is the
/// decompressed payload, or None when the body is the pickle itself, which
/// the caller then reads from `frame[body_start:]` without a copy.
#[pyfunction]
#[pyo3(signature = (frame, *, keys, require_signature, expected_python, max_payload_len))]
pub(crate) fn open_frame<'py>(
    py: Python<'py>,
    frame: &[u8],
    keys: HashMap<String, Vec<u8>>,
    require_signature: bool,
    expected_python: Option<PythonTriple<'_>>,
    max_payload_len: u64,
) -> PyResult<(Bound<'py, PyDict>, usize, Option<Bound<'py, PyBytes>>)> {
    let options = OpenOptions {
        keys: keys
            .iter()
            .map(|(id, secret)| (id.as_str(), secret.as_slice()))
            .collect(),
        require_signature,
        expected_python: expected_python.map(python_version),
        max_payload_len,
    };
    let opened = py.detach(|| envelope::open(frame, &options)).map_err(refusal)?;
    let body_start = frame.len() - opened.header.body_len as usize;
    let pickle = match opened.pickle {
        std::borrow::Cow::Owned(bytes) => Some(PyBytes::new(py, &bytes)),
        std::borrow::Cow::Borrowed(_) => None,
    };
    Ok((header_dict(py, &opened.header)?, body_start, pickle))
}

/// A frame's header, unverified: for inspection and cache look-ups.
#[pyfunction]
pub(crate) fn read_header<'py>(py: Python<'py>, frame: &[u8]) -> PyResult<Bound<'py, PyDict>> {
    header_dict(py, &envelope::parse(frame).map_err(refusal)?)
}

fn header_dict<'py>(py: Python<'py>, header: &Header) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let implementation = match header.python.implementation {
        PythonImplementation::CPython => "cpython",
        PythonImplementation::PyPy => "pypy",
        PythonImplementation::Other => "other",
    };
    dict.set_item("format_version", envelope::FORMAT_VERSION)?;
    dict.set_item("python", (implementation, header.python.major, header.python.minor))?;
    dict.set_item("target", header.target.name())?;
    dict.set_item("protocol", header.protocol)?;
    dict.set_item("writer_version", &header.writer_version)?;
    dict.set_item("compressed", header.compressed)?;
    dict.set_item("payload_size", header.payload_len)?;
    dict.set_item("body_size", header.body_len)?;
    dict.set_item("digest", hex(&header.digest))?;
    dict.set_item("key_id", header.signature.as_ref().map(|(id, _)| id.as_str()))?;
    Ok(dict)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
