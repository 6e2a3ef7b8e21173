//! A pyarrow batch of flat columns, sent from its C data export as it is.
//!
//! Importing an exported batch into arrow-rs arrays, checking them, encoding
//! them and dropping them was most of what sending a small batch cost. For
//! flat columns the IPC message needs only each column's null count and its
//! buffers (see the core's `flat_batch`), and the export gives both: the
//! buffers' addresses, with the lengths that the rows and the types imply,
//! as arrow-rs's own import computes them. A batch the export shows in any
//! other shape (sliced, a null count pyarrow left uncomputed, a missing
//! buffer, offsets that do not start at zero) is imported as before.

use arrow_array::ffi::FFI_ArrowArray;
use arrow_schema::Schema;
use flightpickle_core::transport::flat_batch::{FlatColumn, FlatLayout, flat_layout};

/// An exported batch read as flat columns; dropping it releases the export
/// (pyarrow's callback), and with it the buffers.
pub(crate) struct FlatExport {
    array: FFI_ArrowArray,
    columns: Vec<RawColumn>,
}

// SAFETY: the columns point into buffers `array` keeps alive until it is
// released, which pyarrow allows from any thread; they are only read.
unsafe impl Send for FlatExport {}
unsafe impl Sync for FlatExport {}

struct RawColumn {
    null_count: usize,
    validity: RawSlice,
    values: RawSlice,
    data: Option<RawSlice>,
}

#[derive(Clone, Copy)]
struct RawSlice {
    start: *const u8,
    len: usize,
}

impl RawSlice {
    const EMPTY: Self = Self {
        start: std::ptr::NonNull::dangling().as_ptr(),
        len: 0,
    };

    /// `len` bytes at `start`; None when there are bytes to read and no buffer.
    fn new(start: *const u8, len: usize) -> Option<Self> {
        match len {
            0 => Some(Self::EMPTY),
            _ if start.is_null() => None,
            _ => Some(Self { start, len }),
        }
    }

    /// SAFETY: the slice's memory is live for `'a`.
    unsafe fn get<'a>(self) -> &'a [u8] {
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }
}

impl FlatExport {
    /// `array`, a struct array pyarrow exported for a batch of `schema`'s
    /// types, as flat columns; given back when it is not in that shape.
    pub(crate) fn new(array: FFI_ArrowArray, schema: &Schema) -> Result<Self, FFI_ArrowArray> {
        match raw_columns(&array, schema) {
            Some(columns) => Ok(Self { array, columns }),
            None => Err(array),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.array.len()
    }

    pub(crate) fn columns(&self) -> Vec<FlatColumn<'_>> {
        // SAFETY: the buffers live as long as `self.array`, which `self` owns.
        let slice = |raw: RawSlice| unsafe { raw.get() };
        self.columns
            .iter()
            .map(|column| FlatColumn {
                null_count: column.null_count,
                validity: slice(column.validity),
                values: slice(column.values),
                data: column.data.map(slice),
            })
            .collect()
    }
}

fn raw_columns(array: &FFI_ArrowArray, schema: &Schema) -> Option<Vec<RawColumn>> {
    let rows = usize::try_from(i64::try_from(array.len()).ok()?).ok()?;
    let whole = !array.is_released() && array.offset() == 0 && array.null_count_opt() == Some(0);
    if !whole || array.num_children() != schema.fields().len() {
        return None;
    }
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let column = raw_column(array.child(index), flat_layout(field.data_type())?, rows)?;
            // Nulls where the schema allows none: the import refuses them
            // with its error, before anything is sent.
            (field.is_nullable() || column.null_count == 0).then_some(column)
        })
        .collect()
}

/// A child array's buffers, sliced as arrow-rs's import would size them.
fn raw_column(child: &FFI_ArrowArray, layout: FlatLayout, rows: usize) -> Option<RawColumn> {
    let buffers = if layout.has_data() { 3 } else { 2 };
    let plain = child.len() == rows && child.offset() == 0 && child.num_children() == 0 && child.dictionary().is_none();
    if !plain || child.num_buffers() != buffers {
        return None;
    }
    let null_count = child.null_count_opt().filter(|&nulls| nulls <= rows)?;
    let bitmap = rows.div_ceil(8);
    let validity = match null_count {
        0 => RawSlice::EMPTY,
        _ => RawSlice::new(child.buffer(0), bitmap)?,
    };
    let values = RawSlice::new(child.buffer(1), layout.values_len(rows)?)?;
    let data = match layout {
        FlatLayout::Variable(width) => {
            // SAFETY: `values` holds rows + 1 offsets of `width` bytes.
            let (first, last) = unsafe { (offset_at(values, width, 0), offset_at(values, width, rows)) };
            if first != 0 || last < 0 {
                return None;
            }
            Some(RawSlice::new(child.buffer(2), usize::try_from(last).ok()?)?)
        }
        _ => None,
    };
    Some(RawColumn {
        null_count,
        validity,
        values,
        data,
    })
}

/// Offset `index` of an offsets buffer of `width`-byte offsets.
///
/// SAFETY: `offsets` holds more than `index` offsets.
unsafe fn offset_at(offsets: RawSlice, width: usize, index: usize) -> i64 {
    unsafe {
        let at = offsets.start.add(index * width);
        match width {
            4 => i64::from(at.cast::<i32>().read_unaligned()),
            _ => at.cast::<i64>().read_unaligned(),
        }
    }
}
