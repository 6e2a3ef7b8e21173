//! Record batches between pyarrow and the transport, through the Arrow C
//! data interface.
//!
//! Out: a batch to send is imported with cheap checks only (buffer sizes,
//! first and last offsets: what encoding it reads), not a full validation
//! (every offset, every string's UTF-8): this project's receivers (worker,
//! Python client, JNI client) fully validate what they decode, so a full
//! pass here did that work twice, and it cost more than the copy (a few
//! hundred microseconds for a batch of 65,536 short strings).
//!
//! In: `arrow_pyarrow`'s `RecordBatch::to_pyarrow` wraps every batch in a
//! one-batch C stream: pyarrow then imports the stream, its schema and the
//! batch, about 10 µs for a small batch. A stream's batches all have the
//! schema it declared, so the pyarrow `Schema` is made once
//! (`IncomingSchema::new`) and each batch crosses as one C `ArrowArray`,
//! imported with `pyarrow.RecordBatch._import_from_c(pointer, schema)`.

use arrow_array::ffi::FFI_ArrowArray;
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_pyarrow::{FromPyArrowUnchecked, ToPyArrow};
use arrow_schema::{Schema, SchemaRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use flightpickle_core::transport::batch::shared;

/// A `pyarrow.RecordBatch` (or any object with `__arrow_c_array__` giving a
/// struct array) to send, sharing its buffers.
pub(crate) fn batch_to_send(value: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    // SAFETY: the batch is only encoded for the wire, which copies bytes and
    // never reads a value as `str`, so invalid UTF-8 or unordered inner
    // offsets cannot cause harm here (the receiver refuses them). What the
    // encoder does rely on, `validate` checks below before anything reads
    // the buffers: each buffer is as long as the layout says, and the first
    // and last offsets it slices value buffers with are in bounds.
    let batch = unsafe { RecordBatch::from_pyarrow_bound_unchecked(value) }?;
    for column in batch.columns() {
        column
            .to_data()
            .validate()
            .map_err(|e| PyValueError::new_err(format!("invalid batch to send: {e}")))?;
    }
    Ok(batch)
}

/// The schema a connection decodes batches with, in Rust and as a
/// `pyarrow.Schema`.
pub(crate) struct IncomingSchema {
    pub(crate) arrow: SchemaRef,
    pyarrow: Py<PyAny>,
}

impl IncomingSchema {
    pub(crate) fn new(py: Python<'_>, schema: Schema) -> PyResult<Self> {
        // Made from the Rust schema, not taken from the caller: whatever
        // object declared it, this is a `pyarrow.Schema` with exactly the
        // types batches are decoded with.
        let pyarrow = schema.to_pyarrow(py)?.unbind();
        Ok(Self {
            arrow: shared(schema),
            pyarrow,
        })
    }

    /// `batch`, decoded with this schema, as a `pyarrow.RecordBatch` sharing its buffers.
    pub(crate) fn to_pyarrow<'py>(&self, py: Python<'py>, batch: RecordBatch) -> PyResult<Bound<'py, PyAny>> {
        let rows = batch.num_rows();
        let array = StructArray::from(batch);
        debug_assert_eq!(array.len(), rows);
        let mut exported = FFI_ArrowArray::new(&array.to_data());
        let address = &raw mut exported as usize;
        // pyarrow moves the struct out (leaving it released) when it imports
        // it; if the call fails first, dropping `exported` releases it here.
        record_batch_class(py)?.call_method1(pyo3::intern!(py, "_import_from_c"), (address, self.pyarrow.bind(py)))
    }
}

fn record_batch_class(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    CELL.import(py, "pyarrow", "RecordBatch")
}
