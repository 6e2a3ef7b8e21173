//! A function object's own fields, read where the attribute getters would
//! only return them: the writer reads eight per function it writes, the
//! loader compares four with the pickle's state, and a `getattr` each
//! would cost ~0.3k instructions.

use pyo3::ffi;
use pyo3::prelude::*;

/// A `function` object, checked once, whose fields can then be read.
#[derive(Clone, Copy)]
pub(crate) struct FunctionFields<'a, 'py> {
    func: &'a Bound<'py, PyAny>,
}

impl<'a, 'py> FunctionFields<'a, 'py> {
    /// The fields of `func`; None unless it is a `function` (a type that
    /// cannot be subclassed, so its layout is `PyFunctionObject`).
    #[inline]
    pub(crate) fn of(func: &'a Bound<'py, PyAny>) -> Option<Self> {
        // SAFETY: a type check on a live object.
        let is_function = unsafe { ffi::PyFunction_Check(func.as_ptr()) } != 0;
        is_function.then_some(Self { func })
    }

    /// The field `pick` chooses, None where it is null (where
    /// `__defaults__`, `__kwdefaults__`, `__module__` and `__doc__` read None).
    #[inline]
    pub(crate) fn read(
        self,
        pick: impl FnOnce(&ffi::PyFunctionObject) -> *mut ffi::PyObject,
    ) -> Option<Bound<'py, PyAny>> {
        // SAFETY: `of` checked that the object is a `PyFunctionObject`; the
        // field is borrowed from it and made strong at once.
        unsafe {
            let object = &*self.func.as_ptr().cast::<ffi::PyFunctionObject>();
            Bound::from_borrowed_ptr_or_opt(self.func.py(), pick(object))
        }
    }

    /// The field `pick` chooses, None (the object) where it is null.
    #[inline]
    pub(crate) fn read_or_none(
        self,
        pick: impl FnOnce(&ffi::PyFunctionObject) -> *mut ffi::PyObject,
    ) -> Bound<'py, PyAny> {
        let py = self.func.py();
        self.read(pick).unwrap_or_else(|| py.None().into_bound(py))
    }
}
