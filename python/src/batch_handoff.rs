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
//! A stream's batches usually share one schema, yet `__arrow_c_array__`
//! exports it with every batch and importing it again costs more than the
//! batch's own buffers do for a small batch. `OutgoingSchema` remembers the
//! last `pyarrow.Schema` it imported; a `pyarrow.RecordBatch` whose schema is
//! that object or equal to it crosses as its array alone
//! (`RecordBatch._export_to_c` without a schema), typed with the Rust schema
//! imported before. When all of that schema's columns are flat, the export is
//! not even imported: its buffers are sent as they are (`flat_export`).
//!
//! In: `arrow_pyarrow`'s `RecordBatch::to_pyarrow` wraps every batch in a
//! one-batch C stream: pyarrow then imports the stream, its schema and the
//! batch, about 10 µs for a small batch. A stream's batches all have the
//! schema it declared, so the pyarrow `Schema` is made once
//! (`IncomingSchema::new`) and each batch crosses as one C `ArrowArray`,
//! imported with `pyarrow.RecordBatch._import_from_c(pointer, schema)`. The
//! core decodes each batch as that array's data (`decode_batch_data`), for
//! flat columns straight from the received body, without arrays.

use std::sync::{Arc, Mutex, PoisonError};

use arrow_array::ffi::{FFI_ArrowArray, from_ffi_and_data_type};
use arrow_array::{Array, RecordBatch, RecordBatchOptions, StructArray};
use arrow_data::ArrayData;
use arrow_pyarrow::{FromPyArrowUnchecked, ToPyArrow};
use arrow_schema::{DataType, Schema, SchemaRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use flightpickle_core::transport::batch::shared;
use flightpickle_core::transport::flat_batch::is_flat;

use crate::flat_export::FlatExport;

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
    check_for_encoding(&batch)?;
    Ok(batch)
}

/// What encoding relies on: buffer sizes and the offsets it slices with.
fn check_for_encoding(batch: &RecordBatch) -> PyResult<()> {
    for column in batch.columns() {
        column
            .to_data()
            .validate()
            .map_err(|e| PyValueError::new_err(format!("invalid batch to send: {e}")))?;
    }
    Ok(())
}

/// The schema of the batches a connection last sent, as the `pyarrow.Schema`
/// object they came with and as imported from it.
struct SeenSchema {
    pyarrow: Py<PyAny>,
    arrow: SchemaRef,
    struct_type: DataType,
    /// Whether every column is flat, so that a batch may be sent as it was
    /// exported (see `flat_export`).
    flat: bool,
}

/// A batch to send: as arrow-rs arrays, or, for flat columns, as pyarrow
/// exported it, with the schema it was read with.
pub(crate) enum Outgoing {
    Batch(RecordBatch),
    Flat(FlatExport, SchemaRef),
}

/// Imports the batches a connection sends, their schema once while it stays the same.
#[derive(Default)]
pub(crate) struct SendImporter {
    // Never held across a call into Python, which may let another thread
    // take the interpreter lock and then wait here.
    seen: Mutex<Option<Arc<SeenSchema>>>,
}

impl SendImporter {
    /// `value` (see [`batch_to_send`]) as a batch to encode.
    pub(crate) fn import(&self, value: &Bound<'_, PyAny>) -> PyResult<Outgoing> {
        let py = value.py();
        if !value.get_type().is(record_batch_class(py)?) {
            return batch_to_send(value).map(Outgoing::Batch);
        }
        let schema = value.getattr(pyo3::intern!(py, "schema"))?;
        let known = self.seen().clone();
        if let Some(known) = known.filter(|known| same_schema(&known.pyarrow, &schema).unwrap_or(false)) {
            return import_array_only(value, &known);
        }
        let batch = batch_to_send(value)?;
        *self.seen() = Some(Arc::new(SeenSchema {
            pyarrow: schema.unbind(),
            arrow: batch.schema(),
            struct_type: DataType::Struct(batch.schema().fields().clone()),
            flat: is_flat(&batch.schema()),
        }));
        Ok(Outgoing::Batch(batch))
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Option<Arc<SeenSchema>>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `schema` is `known`, or equal to it (names, types, nullability;
/// metadata aside, which encoding does not carry).
fn same_schema(known: &Py<PyAny>, schema: &Bound<'_, PyAny>) -> PyResult<bool> {
    let known = known.bind(schema.py());
    if known.is(schema) {
        return Ok(true);
    }
    known
        .call_method1(pyo3::intern!(schema.py(), "equals"), (schema,))?
        .is_truthy()
}

/// A `pyarrow.RecordBatch` of a schema equal to `known`'s, exporting only
/// its arrays, and importing them unless they can be sent as exported.
fn import_array_only(value: &Bound<'_, PyAny>, known: &SeenSchema) -> PyResult<Outgoing> {
    let mut exported = FFI_ArrowArray::empty();
    let address = &raw mut exported as usize;
    value.call_method1(pyo3::intern!(value.py(), "_export_to_c"), (address,))?;
    if known.flat {
        match FlatExport::new(exported, &known.arrow) {
            Ok(flat) => return Ok(Outgoing::Flat(flat, known.arrow.clone())),
            Err(array) => exported = array,
        }
    }
    // SAFETY: pyarrow filled `exported` with the batch as a struct array of
    // the schema it has, which is equal to `known`'s, so the data type given
    // here is the array's own. Importing checks buffer counts; what encoding
    // reads is checked below before anything reads the buffers.
    let data = unsafe { from_ffi_and_data_type(exported, known.struct_type.clone()) }
        .map_err(|e| PyValueError::new_err(format!("cannot import the batch to send: {e}")))?;
    let rows = data.len();
    let (_, columns, nulls) = StructArray::from(data).into_parts();
    if nulls.is_some_and(|n| n.null_count() > 0) {
        return Err(PyValueError::new_err("a record batch cannot have null rows"));
    }
    let options = RecordBatchOptions::default().with_row_count(Some(rows));
    let batch = RecordBatch::try_new_with_options(known.arrow.clone(), columns, &options)
        .map_err(|e| PyValueError::new_err(format!("invalid batch to send: {e}")))?;
    check_for_encoding(&batch)?;
    Ok(Outgoing::Batch(batch))
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

    /// A batch decoded with this schema, as the data of a struct array of
    /// its columns, as a `pyarrow.RecordBatch` sharing its buffers.
    pub(crate) fn to_pyarrow<'py>(&self, py: Python<'py>, batch: ArrayData) -> PyResult<Bound<'py, PyAny>> {
        let mut exported = FFI_ArrowArray::new(&batch);
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
