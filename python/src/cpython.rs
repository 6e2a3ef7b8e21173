//! CPython functions the crate calls that PyO3 does not declare, and the
//! object layouts it reads in place (a str's UTF-8, a slot's offset).

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

unsafe extern "C" {
    /// The MRO lookup of `name` on `kind`, through the method cache: no
    /// descriptor called, a borrowed result, and no exception set on a miss.
    /// Exported by CPython 3.11 and 3.12.
    pub(crate) fn _PyType_Lookup(kind: *mut ffi::PyTypeObject, name: *mut ffi::PyObject) -> *mut ffi::PyObject;

    /// A code object's code string, made on the first call and kept by the
    /// code object after it: a new reference, or null with an exception
    /// set. New in 3.11.
    #[cfg(Py_3_11)]
    pub(crate) fn PyCode_GetCode(code: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// `code.co_code`: through `PyCode_GetCode` where there is one.
pub(crate) fn code_string<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    #[cfg(Py_3_11)]
    // SAFETY: the caller passes a code object; the call returns a new
    // reference or null with an exception set.
    unsafe {
        if ffi::PyCode_Check(code.as_ptr()) != 0 {
            return Bound::from_owned_ptr_or_err(code.py(), PyCode_GetCode(code.as_ptr()));
        }
    }
    code.getattr(pyo3::intern!(code.py(), "co_code"))
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

/// A str's UTF-8 bytes read in place (see `str_utf8`), None for a str with
/// lone surrogates (whose error is cleared: it has no UTF-8 to compare).
pub(crate) fn str_bytes<'a>(text: &'a Bound<'_, PyString>) -> Option<&'a [u8]> {
    // SAFETY: a live str; its bytes live as long as it does, which the
    // borrow of `text` outlives the slice for.
    unsafe {
        let (data, size) = str_utf8(text.as_ptr());
        if data.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(std::slice::from_raw_parts(data.cast::<u8>(), size as usize))
    }
}

/// The member that `getattr(obj, name)` and `setattr(obj, name, ...)`
/// would go through without running anything else: `name` an exact str,
/// and the first thing the MRO has under it an exact `member_descriptor`
/// of an object slot (one that raises AttributeError when unset) made for
/// `__slots__` of a class `obj` is an instance of. Anything else (a
/// subclass's property of that name, a descriptor of another kind) is None.
///
/// # Safety
/// Attached; the member lives as long as its descriptor, which the type
/// holds.
unsafe fn slot_member(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> Option<*mut ffi::PyMemberDef> {
    // SAFETY: type checks and an MRO lookup (borrowed result, no error set
    // on a miss) on live objects; the descriptor's fields are read only
    // once its exact type is known.
    unsafe {
        if ffi::PyUnicode_CheckExact(name.as_ptr()) == 0 {
            return None;
        }
        let found = _PyType_Lookup(ffi::Py_TYPE(obj.as_ptr()), name.as_ptr());
        if found.is_null() || ffi::Py_TYPE(found) != &raw mut ffi::PyMemberDescr_Type {
            return None;
        }
        let descriptor = found.cast::<ffi::PyMemberDescrObject>();
        let owner = (*descriptor).d_common.d_type;
        let member = (*descriptor).d_member;
        let plain = !member.is_null()
            && (*member).type_code == ffi::Py_T_OBJECT_EX
            && (*member).offset > 0
            && ffi::PyType_HasFeature(owner, ffi::Py_TPFLAGS_HEAPTYPE) != 0
            && ffi::PyObject_TypeCheck(obj.as_ptr(), owner) != 0;
        plain.then_some(member)
    }
}

/// The offset of the slot that `getattr(obj, name)` would read, when it
/// would read one and nothing else could run or differ (see `slot_member`;
/// and no audit hook on the read). `obj`'s type must have the generic
/// `__getattribute__` (a default-reduced object), which calls such a
/// descriptor before looking anywhere else, and the descriptor's `__get__`
/// is then this read (see `read_slot`).
pub(crate) fn plain_slot_offset(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> Option<isize> {
    // SAFETY: attached (a `Bound`); the member is read while its type lives.
    unsafe {
        let member = slot_member(obj, name)?;
        ((*member).flags & ffi::Py_AUDIT_READ == 0).then(|| (*member).offset)
    }
}

/// The offset of the slot that `setattr(obj, name, value)` would store
/// into, when that is all it would do: the generic `__setattr__`, and a
/// writable slot (see `slot_member`). Storing there (see `store_slot`) is
/// what the descriptor's `__set__` does, without the lookups around it.
pub(crate) fn writable_slot_offset(obj: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> Option<isize> {
    // CPython's exported slot function, one address in the process (ELF
    // makes imported addresses canonical).
    let address = |slot: Option<ffi::setattrofunc>| slot.map(|f| f as usize);
    // SAFETY: attached (a `Bound`); the type's slot and the member are read
    // while they live.
    unsafe {
        if address((*ffi::Py_TYPE(obj.as_ptr())).tp_setattro) != address(Some(ffi::PyObject_GenericSetAttr)) {
            return None;
        }
        let member = slot_member(obj, name)?;
        ((*member).flags & ffi::Py_READONLY == 0).then(|| (*member).offset)
    }
}

/// What the object slot at `offset` holds; None when it is unset.
///
/// # Safety
/// `offset` came from `plain_slot_offset` for `obj`'s type (or a type whose
/// instances share its layout, as a slot plan checks).
pub(crate) unsafe fn read_slot<'py>(
    obj: &pyo3::Bound<'py, pyo3::PyAny>,
    offset: isize,
) -> Option<pyo3::Bound<'py, pyo3::PyAny>> {
    // SAFETY: the caller's contract: an object slot inside `obj`.
    unsafe {
        let field = obj.as_ptr().cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>();
        pyo3::Bound::from_borrowed_ptr_or_opt(obj.py(), *field)
    }
}

/// Stores `value` in the object slot at `offset`, releasing what it held.
///
/// # Safety
/// `offset` came from `writable_slot_offset` for `obj`.
pub(crate) unsafe fn store_slot(obj: &Bound<'_, PyAny>, offset: isize, value: &Bound<'_, PyAny>) {
    // SAFETY: the caller's contract: an object slot inside `obj`, which
    // holds a strong reference or null.
    unsafe {
        let field = obj.as_ptr().cast::<u8>().offset(offset).cast::<*mut ffi::PyObject>();
        let previous = std::ptr::replace(field, value.clone().into_ptr());
        ffi::Py_XDECREF(previous);
    }
}

/// The same object, or two equal exact strs (no user `__eq__` runs).
pub(crate) fn same_text(current: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<bool> {
    if current.is(value) {
        return Ok(true);
    }
    match (current.cast_exact::<PyString>(), value.cast_exact::<PyString>()) {
        (Ok(current), Ok(value)) => equal_strs(current, value),
        _ => Ok(false),
    }
}

/// Whether two strs hold the same text: their UTF-8 compared in place
/// (what a rich comparison would cost twice over, with a bool to read
/// back), by `==` for a str with lone surrogates, which has none.
pub(crate) fn equal_strs(a: &Bound<'_, PyString>, b: &Bound<'_, PyString>) -> PyResult<bool> {
    // SAFETY: both are live strs, held while their bytes are read.
    let ((a_data, a_size), (b_data, b_size)) = unsafe { (str_utf8(a.as_ptr()), str_utf8(b.as_ptr())) };
    if a_data.is_null() || b_data.is_null() {
        // SAFETY: the failed read set an exception; `==` answers instead.
        unsafe { ffi::PyErr_Clear() };
        return a.as_any().eq(b);
    }
    // SAFETY: each pointer is to its size in bytes, owned by its str.
    let (a_text, b_text) = unsafe {
        (
            std::slice::from_raw_parts(a_data.cast::<u8>(), a_size as usize),
            std::slice::from_raw_parts(b_data.cast::<u8>(), b_size as usize),
        )
    };
    Ok(a_text == b_text)
}
