//! CPython functions the crate calls that PyO3 does not declare, and the
//! one object layout it reads in place.

use pyo3::ffi;

unsafe extern "C" {
    /// The MRO lookup of `name` on `kind`, through the method cache: no
    /// descriptor called, a borrowed result, and no exception set on a miss.
    /// Exported by CPython 3.11 and 3.12.
    pub(crate) fn _PyType_Lookup(kind: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// A str's UTF-8 bytes and their length, as `PyUnicode_AsUTF8AndSize`
/// gives them (null for lone surrogates, with an exception set). A compact
/// ASCII str, which nearly every name and file name is, holds its UTF-8
/// right after its header: read there, without the call and its checks
/// (~25 instructions a name). That layout is public up to 3.13 only.
///
/// # Safety
/// `op` must be a live str; the bytes live as long as it does.
pub(crate) unsafe fn str_utf8(op: *mut ffi::PyObject) -> (*const std::ffi::c_char, ffi::Py_ssize_t) {
    #[cfg(not(Py_3_14))]
    // SAFETY: a compact ASCII str is always ready, its data right after
    // its header.
    unsafe {
        if ffi::PyUnicode_IS_COMPACT_ASCII(op) != 0 {
            return (ffi::PyUnicode_DATA(op).cast(), ffi::PyUnicode_GET_LENGTH(op));
        }
    }
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `op` is a str; the UTF-8 form lives as long as it.
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(op, &mut size) };
    (data, size)
}
