//! Where the writer's bytes go: a `bytes` object grown in place (so that
//! `dumps` returns it without a final copy, as the C pickler does), cut
//! into frames at protocol 4 and above, and optionally drained into a
//! file's `write` as frames complete, with large payloads written to the
//! file directly instead of through the buffer.

use std::os::raw::c_int;

use pyo3::exceptions::PyMemoryError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::opcodes::FRAME;

unsafe extern "C" {
    // Exported by CPython; pyo3 declares it crate-private.
    fn _PyBytes_Resize(bytes: *mut *mut ffi::PyObject, newsize: ffi::Py_ssize_t) -> c_int;
}

const FRAME_HEADER_SIZE: usize = 9;
/// A frame is closed once it holds this much; larger payloads bypass frames.
pub(crate) const FRAME_SIZE_TARGET: usize = 64 * 1024;
/// Frames smaller than this are not worth their header and are unframed.
const FRAME_SIZE_MIN: usize = 4;
/// The buffer starts as large as CPython's small-object allocator serves
/// (512 bytes, header included): most pickles fit, and making it and
/// trimming it to the pickle's length then cost a fraction of what a 4 KiB
/// buffer does (the C pickler's start, which takes `malloc` twice).
const INITIAL_CAPACITY: usize = 512 - BYTES_HEADER_SIZE;
/// The first step past the small start when the pickle still fits: the
/// largest block glibc serves from its per-thread cache (1032 bytes, header
/// included). Growing from 512 bytes to 4 KiB took `malloc`'s slow path
/// and a `realloc` that split the block when the pickle was trimmed: ~0.6k
/// of a 600-byte function pickle.
const MIDDLE_CAPACITY: usize = 1032 - BYTES_HEADER_SIZE;
/// The least a buffer grows to past the middle step.
const GROWN_CAPACITY: usize = 4096;
/// What a `bytes` object takes besides its contents (its header and the
/// trailing NUL).
const BYTES_HEADER_SIZE: usize = std::mem::size_of::<ffi::PyBytesObject>();

pub(crate) struct Output<'py> {
    py: Python<'py>,
    /// An owned `bytes` object of length `capacity`, of which `len` are written.
    bytes: *mut ffi::PyObject,
    /// Where `bytes` keeps its contents (moves when it is resized).
    data: *mut u8,
    len: usize,
    capacity: usize,
    framing: bool,
    frame_start: Option<usize>,
    /// The file's bound `write`, for `dump`.
    sink: Option<Bound<'py, PyAny>>,
    /// Whether anything has reached the sink (a failed dump cannot be redone).
    pub(crate) drained: bool,
}

impl<'py> Output<'py> {
    pub(crate) fn new(py: Python<'py>, sink: Option<Bound<'py, PyAny>>) -> PyResult<Self> {
        // SAFETY: a null source makes an uninitialised bytes object we own.
        let bytes = unsafe { ffi::PyBytes_FromStringAndSize(std::ptr::null(), INITIAL_CAPACITY as ffi::Py_ssize_t) };
        if bytes.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(Self {
            py,
            bytes,
            // SAFETY: a live bytes object.
            data: unsafe { ffi::PyBytes_AsString(bytes).cast() },
            len: 0,
            capacity: INITIAL_CAPACITY,
            framing: false,
            frame_start: None,
            sink,
            drained: false,
        })
    }

    /// Bytes written so far (while unframed and not drained: offsets into
    /// the pickle).
    pub(crate) fn written(&self) -> usize {
        self.len
    }

    /// Frames start with the first write after this (protocol 4 and above).
    pub(crate) fn start_framing(&mut self) {
        self.framing = true;
    }

    #[inline]
    pub(crate) fn write(&mut self, data: &[u8]) -> PyResult<()> {
        self.open_frame()?;
        if self.len + data.len() > self.capacity {
            self.reserve(data.len())?;
        }
        // SAFETY: there is room for `data` after `len` in our buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.data.add(self.len), data.len()) };
        self.len += data.len();
        Ok(())
    }

    /// Leaves room for a frame's header before the first write of a frame.
    #[inline]
    fn open_frame(&mut self) -> PyResult<()> {
        if self.framing && self.frame_start.is_none() {
            self.reserve(FRAME_HEADER_SIZE)?;
            self.frame_start = Some(self.len);
            self.len += FRAME_HEADER_SIZE;
        }
        Ok(())
    }

    /// `first` then `second`, with one check of the frame and of the room:
    /// an opcode's header and a short payload (a name) are most writes.
    #[inline]
    fn write_both(&mut self, first: &[u8], second: &[u8]) -> PyResult<()> {
        self.open_frame()?;
        let size = first.len() + second.len();
        if self.len + size > self.capacity {
            self.reserve(size)?;
        }
        // SAFETY: there is room for both after `len` in our buffer.
        unsafe {
            let at = self.data.add(self.len);
            std::ptr::copy_nonoverlapping(first.as_ptr(), at, first.len());
            std::ptr::copy_nonoverlapping(second.as_ptr(), at.add(first.len()), second.len());
        }
        self.len += size;
        Ok(())
    }

    /// `header` then `data`; data of a frame's size or more goes outside
    /// any frame, and straight to the sink when there is one (`payload`
    /// makes the object handed to `write`).
    pub(crate) fn write_payload(
        &mut self,
        header: &[u8],
        data: &[u8],
        payload: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        if data.len() < FRAME_SIZE_TARGET {
            return self.write_both(header, data);
        }
        self.commit_frame();
        let framing = std::mem::replace(&mut self.framing, false);
        self.write(header)?;
        let result = match self.sink.clone() {
            Some(sink) => self.drain().and_then(|()| {
                sink.call1((payload()?,))?;
                Ok(())
            }),
            None => self.write(data),
        };
        self.framing = framing;
        result
    }

    /// Called between opcodes: closes a full frame, and drains it to the sink.
    /// Inline, as it runs after every object; closing is out of line.
    #[inline]
    pub(crate) fn opcode_boundary(&mut self) -> PyResult<()> {
        let Some(start) = self.frame_start else {
            return Ok(());
        };
        if self.len - start - FRAME_HEADER_SIZE >= FRAME_SIZE_TARGET {
            return self.close_full_frame();
        }
        Ok(())
    }

    #[inline(never)]
    fn close_full_frame(&mut self) -> PyResult<()> {
        self.commit_frame();
        if self.sink.is_some() {
            self.drain()?;
        }
        Ok(())
    }

    /// Fills in the open frame's header, or removes it if the frame is tiny.
    pub(crate) fn commit_frame(&mut self) {
        let Some(start) = self.frame_start.take() else {
            return;
        };
        let frame_len = self.len - start - FRAME_HEADER_SIZE;
        // SAFETY: `start..len` lies within the written part of our buffer.
        unsafe {
            let base = self.data.add(start);
            if frame_len >= FRAME_SIZE_MIN {
                *base = FRAME;
                let size = (frame_len as u64).to_le_bytes();
                std::ptr::copy_nonoverlapping(size.as_ptr(), base.add(1), size.len());
            } else {
                std::ptr::copy(base.add(FRAME_HEADER_SIZE), base, frame_len);
                self.len -= FRAME_HEADER_SIZE;
            }
        }
    }

    /// The pickle, as the `bytes` object the writer grew (for `dumps`).
    pub(crate) fn into_bytes(mut self) -> PyResult<Bound<'py, PyBytes>> {
        self.commit_frame();
        self.resize(self.len)?;
        let bytes = std::mem::replace(&mut self.bytes, std::ptr::null_mut());
        // SAFETY: we own the one reference to a bytes object of length `len`.
        Ok(unsafe { Bound::from_owned_ptr(self.py, bytes).cast_into_unchecked() })
    }

    /// Writes what is left to the sink (for `dump`).
    pub(crate) fn finish_to_sink(mut self) -> PyResult<()> {
        self.commit_frame();
        self.drain()
    }

    /// Hands the buffer's contents to the sink and starts an empty buffer.
    fn drain(&mut self) -> PyResult<()> {
        let Some(sink) = self.sink.clone() else {
            return Ok(());
        };
        if self.len == 0 {
            return Ok(());
        }
        // SAFETY: the first `len` bytes of our buffer are written.
        let chunk = unsafe { PyBytes::new(self.py, std::slice::from_raw_parts(self.data, self.len)) };
        self.len = 0;
        self.drained = true;
        sink.call1((chunk,))?;
        Ok(())
    }

    fn reserve(&mut self, extra: usize) -> PyResult<()> {
        let needed = self
            .len
            .checked_add(extra)
            .ok_or_else(|| PyMemoryError::new_err("pickle output too large"))?;
        if needed <= self.capacity {
            return Ok(());
        }
        // Half as much again for opcodes; a large payload gets room for
        // itself and a frame more, not half its size in untouched memory.
        let slack = if extra >= FRAME_SIZE_TARGET {
            FRAME_SIZE_TARGET
        } else {
            needed / 2
        };
        // Past the small start, to the middle step if the pickle fits it,
        // else straight to the C pickler's 4 KiB: a function's or class's
        // pickle then regrows once or twice, not five times.
        if needed <= MIDDLE_CAPACITY && self.capacity < MIDDLE_CAPACITY {
            return self.resize(MIDDLE_CAPACITY);
        }
        self.resize(needed.saturating_add(slack).max(GROWN_CAPACITY))
    }

    fn resize(&mut self, capacity: usize) -> PyResult<()> {
        if capacity == self.capacity {
            return Ok(());
        }
        let size =
            ffi::Py_ssize_t::try_from(capacity).map_err(|_| PyMemoryError::new_err("pickle output too large"))?;
        // SAFETY: we hold the only reference to `bytes`, as _PyBytes_Resize
        // requires; on failure it frees the object and nulls the pointer.
        if unsafe { _PyBytes_Resize(&mut self.bytes, size) } != 0 {
            return Err(PyErr::fetch(self.py));
        }
        // SAFETY: the resized, live bytes object.
        self.data = unsafe { ffi::PyBytes_AsString(self.bytes).cast() };
        self.capacity = capacity;
        Ok(())
    }
}

impl Drop for Output<'_> {
    fn drop(&mut self) {
        if !self.bytes.is_null() {
            // SAFETY: an `Output` only exists while attached to the
            // interpreter (it holds `Python<'py>`), and owns this reference.
            unsafe { ffi::Py_DecRef(self.bytes) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::with_python;

    fn framed(chunks: &[&[u8]]) -> Vec<u8> {
        with_python(|py| {
            let mut out = Output::new(py, None).unwrap();
            out.write(b"\x80\x05").unwrap();
            out.start_framing();
            for chunk in chunks {
                out.write(chunk).unwrap();
                out.opcode_boundary().unwrap();
            }
            out.into_bytes().unwrap().as_bytes().to_vec()
        })
    }

    #[test]
    fn growing_through_each_step_keeps_what_was_written() {
        with_python(|py| {
            let mut out = Output::new(py, None).unwrap();
            let mut expected = Vec::new();
            for size in [300, 400, 300, 3000, 70_000] {
                let chunk: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
                out.write(&chunk).unwrap();
                expected.extend_from_slice(&chunk);
                if expected.len() <= MIDDLE_CAPACITY {
                    assert!(out.capacity <= MIDDLE_CAPACITY, "at {} bytes", expected.len());
                }
            }
            assert_eq!(out.into_bytes().unwrap().as_bytes(), expected.as_slice());
        });
    }

    #[test]
    fn tiny_frames_are_left_out() {
        assert_eq!(framed(&[b"N."]), b"\x80\x05N.");
    }

    #[test]
    fn a_frame_header_counts_the_bytes_after_it() {
        let pickle = framed(&[b"K\x01", b"K\x02", b"."]);
        assert_eq!(pickle, b"\x80\x05\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02.");
    }

    #[test]
    fn frames_close_at_the_first_boundary_past_the_target() {
        let chunk = vec![b'K'; 1000];
        let chunks: Vec<&[u8]> = (0..70).map(|_| chunk.as_slice()).collect();
        let pickle = framed(&chunks);
        assert_eq!(pickle[2], FRAME);
        let first = u64::from_le_bytes(pickle[3..11].try_into().unwrap()) as usize;
        assert_eq!(first, 66_000);
        assert_eq!(pickle[11 + first], FRAME);
        assert_eq!(pickle.len(), 2 + 9 + 66_000 + 9 + 4_000);
    }
}
