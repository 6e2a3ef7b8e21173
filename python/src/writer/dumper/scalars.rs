//! Atoms: ints, strings, bytes, bytearrays and pickle buffers, each with
//! the C pickler's opcodes for its size and protocol.

use std::hash::Hasher;

use pyo3::exceptions::PyBufferError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString, PyTuple};

use super::Dumper;
use crate::objects;
use crate::quick_hash::QuickHasher;
use crate::writer::memo::{Text, TextSlot};
use crate::writer::opcodes::*;

unsafe extern "C" {
    // Exported by CPython since 3.8; not declared by pyo3.
    fn PyPickleBuffer_GetBuffer(obj: *mut ffi::PyObject) -> *const ffi::Py_buffer;
}

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_int(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let mut overflow = 0;
        // SAFETY: `obj` is an exact int.
        let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
        if overflow == 0 {
            if value == -1
                && let Some(err) = take_error(self.py)
            {
                return Err(err);
            }
            return match value {
                0..=0xff => self.out.write(&[BININT1, value as u8]),
                0x100..=0xffff => {
                    let [low, high] = (value as u16).to_le_bytes();
                    self.out.write(&[BININT2, low, high])
                }
                _ => match i32::try_from(value) {
                    Ok(small) => {
                        let mut op = [BININT; 5];
                        op[1..].copy_from_slice(&small.to_le_bytes());
                        self.out.write(&op)
                    }
                    Err(_) => self.write_long(&long_bytes(value)),
                },
            };
        }
        self.save_big_int(obj)
    }

    /// Beyond 64 bits (rare): through Python's own conversion, which every
    /// supported version has (the C helpers changed in 3.13).
    #[cold]
    #[inline(never)]
    fn save_big_int(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let bits: usize = obj.call_method0(intern!(py, "bit_length"))?.extract()?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item(intern!(py, "signed"), true)?;
        let encoded = obj.call_method(intern!(py, "to_bytes"), ((bits >> 3) + 1, "little"), Some(&kwargs))?;
        let mut bytes = encoded.cast::<PyBytes>()?.as_bytes().to_vec();
        trim_sign_byte(&mut bytes);
        self.write_long(&bytes)
    }

    /// LONG1 or LONG4: little-endian two's complement.
    fn write_long(&mut self, bytes: &[u8]) -> PyResult<()> {
        match u8::try_from(bytes.len()) {
            Ok(size) => self.out.write(&[LONG1, size])?,
            Err(_) => {
                let size = i32::try_from(bytes.len()).map_err(|_| self.overflow("int too large to pickle"))?;
                let mut op = [LONG4; 5];
                op[1..].copy_from_slice(&size.to_le_bytes());
                self.out.write(&op)?;
            }
        }
        self.out.write(bytes)
    }

    pub(super) fn save_str(&mut self, obj: &Bound<'py, PyAny>, by_text: bool) -> PyResult<()> {
        // SAFETY: `obj` is an exact str, held for as long as the bytes are read.
        let (data, size) = unsafe { crate::cpython::str_utf8(obj.as_ptr()) };
        if data.is_null() {
            return self.save_str_with_surrogates(obj, by_text);
        }
        // SAFETY: `size` bytes at `data`, kept alive by `obj`.
        let text = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) };
        if !by_text {
            self.write_str_payload(obj, text)?;
            return self.memoize(obj).map(drop);
        }
        self.save_str_by_text(obj, text, obj)
    }

    /// Lone surrogates: written as the C pickler writes them.
    #[cold]
    #[inline(never)]
    fn save_str_with_surrogates(&mut self, obj: &Bound<'py, PyAny>, by_text: bool) -> PyResult<()> {
        let _ = PyErr::take(self.py);
        let encoded = obj.call_method1(intern!(self.py, "encode"), ("utf-8", "surrogatepass"))?;
        let text = encoded.cast::<PyBytes>()?.as_bytes();
        if !by_text {
            self.write_str_payload(obj, text)?;
            return self.memoize(obj).map(drop);
        }
        self.save_str_by_text(obj, text, &encoded)
    }

    /// A string of a function's, class's or code object's parts, memoized
    /// by its text; `owner` holds `text`'s bytes.
    #[inline(never)]
    fn save_str_by_text(&mut self, obj: &Bound<'py, PyAny>, text: &[u8], owner: &Bound<'py, PyAny>) -> PyResult<()> {
        if let Some(index) = self.memo.text_at_address(obj) {
            // Met before in this dump, as this very object: read back at
            // the index its text has, without hashing the text again.
            return self.write_get(index);
        }
        // Found or given its index in one probe, by the hash the str keeps.
        // Found again by its text, so not recorded by identity too.
        let text = Text::with_hash(text, str_hash(obj));
        let index = match self.memo.find_or_put_text(text, owner) {
            TextSlot::Found(index) => {
                self.memo.note_text_address(obj, index, false);
                return self.write_get(index);
            }
            TextSlot::New(index) => index,
        };
        self.memo.note_text_address(obj, index, owner.is(obj));
        let start = self.out.written();
        self.write_str_payload(obj, text.bytes())?;
        if let Some(events) = &mut self.recording {
            events.push(super::code::Event::Text {
                start,
                end: self.out.written(),
                text: PyBytes::new(self.py, text.bytes()).unbind(),
                hash: text.hash(),
            });
        }
        self.write_put(index)
    }

    /// The string opcode for `text`'s size, then `text`.
    #[inline]
    pub(super) fn write_str_payload(&mut self, obj: &Bound<'py, PyAny>, text: &[u8]) -> PyResult<()> {
        if text.len() <= 0xff && self.proto >= 4 {
            // Nearly every string: two inline writes, without the call to
            // `write_payload` and its branch for payloads that go outside
            // frames (~50 instructions a string).
            self.out.write(&[SHORT_BINUNICODE, text.len() as u8])?;
            return self.out.write(text);
        }
        self.write_long_str_payload(obj, text)
    }

    #[inline(never)]
    fn write_long_str_payload(&mut self, obj: &Bound<'py, PyAny>, text: &[u8]) -> PyResult<()> {
        let header = self.str_header(text.len())?;
        self.out
            .write_payload(header.bytes(), text, || Ok(PyBytes::new(obj.py(), text).into_any()))
    }

    fn str_header(&self, size: usize) -> PyResult<Header> {
        if size <= 0xff && self.proto >= 4 {
            return Ok(Header::new(SHORT_BINUNICODE, &[size as u8]));
        }
        if let Ok(size) = u32::try_from(size) {
            return Ok(Header::new(BINUNICODE, &size.to_le_bytes()));
        }
        if self.proto >= 4 {
            return Ok(Header::new(BINUNICODE8, &(size as u64).to_le_bytes()));
        }
        Err(self.overflow("serializing a string larger than 4 GiB requires pickle protocol 4 or higher"))
    }

    pub(super) fn save_bytes(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        // SAFETY: the caller checked that `obj` is an exact bytes.
        let bytes = unsafe { obj.cast_unchecked::<PyBytes>() };
        if self.proto < 3 {
            return self.save_bytes_as_call(bytes);
        }
        if self.recording.is_some() && self.name_blob == obj.as_ptr() as usize {
            return self.save_name_blob(obj, bytes.as_bytes());
        }
        self.write_bytes_data(obj, bytes.as_bytes())
    }

    /// A code object's name blob (see `name_blob`), memoized by content as
    /// its strings are by text: functions that share their names share one
    /// blob in the pickle.
    #[inline(never)]
    fn save_name_blob(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        // The memo's key starts with 0xFF, which no UTF-8 text holds: bytes
        // are never taken for a string of the same text.
        let mut key = Vec::with_capacity(data.len() + 1);
        key.push(0xFF);
        key.extend_from_slice(data);
        let owner = PyBytes::new(self.py, &key);
        let mut hasher = QuickHasher::default();
        hasher.write(&key);
        let hash = hasher.finish();
        let index = match self
            .memo
            .find_or_put_text(Text::with_hash(owner.as_bytes(), hash), owner.as_any())
        {
            TextSlot::Found(index) => return self.write_get(index),
            TextSlot::New(index) => index,
        };
        let start = self.out.written();
        self.write_bytes_payload(obj, data)?;
        if let Some(events) = &mut self.recording {
            events.push(super::code::Event::Text {
                start,
                end: self.out.written(),
                text: owner.unbind(),
                hash,
            });
        }
        self.write_put(index)
    }

    /// No bytes opcodes before protocol 3: `_codecs.encode(text, 'latin1')`.
    #[cold]
    #[inline(never)]
    fn save_bytes_as_call(&mut self, bytes: &Bound<'py, PyBytes>) -> PyResult<()> {
        let py = self.py;
        let reduced = if bytes.as_bytes().is_empty() {
            PyTuple::new(py, [py.get_type::<PyBytes>().into_any(), PyTuple::empty(py).into_any()])?
        } else {
            let text: String = bytes.as_bytes().iter().map(|&b| char::from(b)).collect();
            let args = PyTuple::new(py, [PyString::new(py, &text), PyString::new(py, "latin1")])?;
            PyTuple::new(py, [objects::codecs_encode(py)?.clone(), args.into_any()])?
        };
        self.save_reduce(&reduced, Some(bytes.as_any()))
    }

    /// SHORT_BINBYTES, BINBYTES or BINBYTES8, then `obj` memoized.
    fn write_bytes_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        self.write_bytes_payload(obj, data)?;
        self.memoize(obj).map(drop)
    }

    /// SHORT_BINBYTES, BINBYTES or BINBYTES8 and `data`.
    fn write_bytes_payload(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        let header = match (u8::try_from(data.len()), u32::try_from(data.len())) {
            (Ok(size), _) => Header::new(SHORT_BINBYTES, &[size]),
            (_, Ok(size)) => Header::new(BINBYTES, &size.to_le_bytes()),
            _ if self.proto >= 4 => Header::new(BINBYTES8, &(data.len() as u64).to_le_bytes()),
            _ => {
                return Err(
                    self.overflow("serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher")
                );
            }
        };
        self.out.write_payload(header.bytes(), data, || Ok(obj.clone()))
    }

    pub(super) fn save_bytearray(&mut self, array: &Bound<'py, PyByteArray>) -> PyResult<()> {
        let py = self.py;
        if self.proto < 5 {
            let kind = py.get_type::<PyByteArray>().into_any();
            let args = if array.is_empty() {
                PyTuple::empty(py)
            } else {
                PyTuple::new(py, [PyBytes::new(py, &array.to_vec())])?
            };
            let reduced = PyTuple::new(py, [kind, args.into_any()])?;
            return self.save_reduce(&reduced, Some(array.as_any()));
        }
        // SAFETY: no Python code runs while the slice is read (a sink gets
        // the object itself, not the slice).
        let data = unsafe { array.as_bytes() };
        self.write_bytearray_data(array.as_any(), data)
    }

    fn write_bytearray_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        let header = Header::new(BYTEARRAY8, &(data.len() as u64).to_le_bytes());
        self.out.write_payload(header.bytes(), data, || Ok(obj.clone()))?;
        self.memoize(obj).map(drop)
    }

    /// A `pickle.PickleBuffer`: in band as bytes or bytearray data, or out
    /// of band (NEXT_BUFFER) when `buffer_callback` returns a false value.
    pub(super) fn save_pickle_buffer(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 5 {
            return Err(self.error("PickleBuffer can only pickled with protocol >= 5".into()));
        }
        self.pickle_buffer_view(obj)?;
        let in_band = match &self.buffer_callback {
            Some(callback) => callback.call1((obj,))?.is_truthy()?,
            None => true,
        };
        // Read again: the callback may have released the buffer.
        let view = self.pickle_buffer_view(obj)?;
        let readonly = view.readonly != 0;
        if !in_band {
            return self.out.write(if readonly {
                &[NEXT_BUFFER, READONLY_BUFFER]
            } else {
                &[NEXT_BUFFER]
            });
        }
        // SAFETY: a contiguous view of `len` bytes, held by `obj`; no Python
        // code runs while the slice is read (a sink gets `obj` itself).
        let data = unsafe { std::slice::from_raw_parts(view.buf.cast::<u8>(), view.len as usize) };
        if readonly {
            self.write_bytes_data(obj, data)
        } else {
            self.write_bytearray_data(obj, data)
        }
    }

    fn pickle_buffer_view(&self, obj: &Bound<'py, PyAny>) -> PyResult<&ffi::Py_buffer> {
        // SAFETY: `obj` is a PickleBuffer; the view it returns lives as long
        // as `obj` is not released (callers re-read it after Python code).
        let view = unsafe { PyPickleBuffer_GetBuffer(obj.as_ptr()) };
        if view.is_null() {
            return Err(super::fetch_error(self.py));
        }
        // SAFETY: non-null, owned by `obj`.
        let view = unsafe { &*view };
        // SAFETY: reads the view's shape only.
        if !view.suboffsets.is_null() || unsafe { ffi::PyBuffer_IsContiguous(view, b'A' as _) } == 0 {
            return Err(not_contiguous());
        }
        Ok(view)
    }
}

#[cold]
#[inline(never)]
fn take_error(py: Python<'_>) -> Option<PyErr> {
    PyErr::take(py)
}

#[cold]
#[inline(never)]
fn not_contiguous() -> PyErr {
    PyBufferError::new_err("PickleBuffer can not be pickled when pointing to a non-contiguous buffer")
}

/// The hash `str` itself gives `obj` (a str's own, never a subclass's
/// `__hash__`): CPython keeps it in the object once made, so reading it
/// costs a load where hashing the text again cost ~30 instructions a name.
/// Equal strings hash alike whatever their kind or subclass.
#[inline]
pub(super) fn str_hash(obj: &Bound<'_, PyAny>) -> u64 {
    let op = obj.as_ptr();
    #[cfg(not(Py_3_14))]
    // SAFETY: `obj` is a str (exact or a subclass), whose header holds the
    // cached hash, -1 until made.
    unsafe {
        let cached = (*op.cast::<ffi::PyASCIIObject>()).hash;
        if cached != -1 {
            return cached as u64;
        }
    }
    made_str_hash(op)
}

/// `str.__hash__` of a str whose hash is not made yet (once per string: it
/// is kept in the str), by `str`'s own slot.
#[cold]
#[inline(never)]
fn made_str_hash(op: *mut ffi::PyObject) -> u64 {
    // SAFETY: `op` is a live str; `str`'s hash slot reads only its text and
    // cannot fail.
    unsafe {
        match (*std::ptr::addr_of!(ffi::PyUnicode_Type)).tp_hash {
            Some(hash) => hash(op) as u64,
            // Never: `str` has its hash slot. Without a panic all the same.
            None => ffi::PyObject_Hash(op) as u64,
        }
    }
}

/// An opcode and its size argument, without a heap allocation.
struct Header {
    bytes: [u8; 9],
    len: usize,
}

impl Header {
    fn new(op: u8, size: &[u8]) -> Self {
        let mut bytes = [op; 9];
        bytes[1..=size.len()].copy_from_slice(size);
        Self {
            bytes,
            len: size.len() + 1,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An int's LONG1 payload: little-endian two's complement in the fewest
/// bytes the C pickler uses (one more than the magnitude's bits need,
/// less a redundant sign byte).
pub(crate) fn long_bytes(value: i64) -> Vec<u8> {
    let bits = 64 - value.unsigned_abs().leading_zeros() as usize;
    let mut bytes = i128::from(value).to_le_bytes()[..(bits >> 3) + 1].to_vec();
    trim_sign_byte(&mut bytes);
    bytes
}

/// Drops the top byte of a negative number when it only repeats the sign.
fn trim_sign_byte(bytes: &mut Vec<u8>) {
    let n = bytes.len();
    if n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
        bytes.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::long_bytes;

    #[test]
    fn long_payloads_match_python_encoding() {
        // pickle.encode_long from the Python pickler, for the same values.
        assert_eq!(long_bytes(1 << 31), vec![0x00, 0x00, 0x00, 0x80, 0x00]);
        assert_eq!(long_bytes(-(1 << 31) - 1), vec![0xff, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(long_bytes(-(1 << 32)), vec![0x00, 0x00, 0x00, 0x00, 0xff]);
        assert_eq!(
            long_bytes(i64::MAX),
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(
            long_bytes(i64::MIN),
            vec![0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80]
        );
    }
}
