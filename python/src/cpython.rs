//! CPython functions the crate calls that PyO3 does not declare.

use pyo3::ffi;

unsafe extern "C" {
    /// The MRO lookup of `name` on `kind`, through the method cache: no
    /// descriptor called, a borrowed result, and no exception set on a miss.
    /// Exported by CPython 3.11 and 3.12.
    pub(crate) fn _PyType_Lookup(kind: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;
}
