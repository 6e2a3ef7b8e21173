//! Received record batches handed to pyarrow through the Arrow C data
//! interface, with the stream's schema imported once instead of per batch.
//!
//! `arrow_pyarrow`'s `RecordBatch::to_pyarrow` wraps every batch in a
//! one-batch C stream: pyarrow then imports the stream, its schema and the
//! batch, about 10 µs for a small batch. A stream's batches all have the
//! schema it declared, so the pyarrow `Schema` is made once
//! (`IncomingSchema::new`) and each batch crosses as one C `ArrowArray`,
//! imported with `pyarrow.RecordBatch._import_from_c(pointer, schema)`.

use arrow_array::ffi::FFI_ArrowArray;
use arrow_array::{Array, RecordBatch, StructArray};
use arrow_pyarrow::ToPyArrow;
use arrow_schema::{Schema, SchemaRef};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use flightpickle_core::transport::batch::shared;

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
        Ok(Self { arrow: shared(schema), pyarrow })
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
