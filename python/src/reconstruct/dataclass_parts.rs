//! `make_dataclass_part(kind, names, values)`: a dataclass's `Field` or
//! its `_DataclassParams`, made from its slot values in one call.
//!
//! Their default reduction is `copyreg.__newobj__` and a BUILD from a dict
//! of the slots: two names to find, a dict of eleven items and a setattr
//! for each, for every field of every dataclass. Here the slot names are
//! the class's `__slots__` tuple, which the pickle memoizes, so a pickle
//! spells them once. Three values travel as marks: the field's kind
//! marker (`_FIELD`, ...) by name, `MISSING` by a bit of `missing`, both
//! compared by identity, and the empty metadata as None, which comes back
//! as `dataclasses`' own, as `field()` sets it.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::cpython::{_PyType_Lookup, store_slot, str_bytes, writable_slot_offset};
use crate::objects;

/// `missing`: bit `i` set, the slot `names[i]` holds `dataclasses.MISSING`
/// (its value, None, stands in), which the pickle then need not name.
#[pyfunction]
#[pyo3(name = "_make_dataclass_part")]
#[pyo3(signature = (kind, names, values, missing = 0))]
pub(crate) fn make_dataclass_part<'py>(
    kind: &str,
    names: &Bound<'py, PyTuple>,
    values: &Bound<'py, PyTuple>,
    missing: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let py = names.py();
    let (class, is_field) = match kind {
        "Field" => (objects::dataclass_field_class(py)?, true),
        "_DataclassParams" => (objects::dataclass_params_class(py)?, false),
        _ => return Err(PyValueError::new_err(format!("unknown dataclass part {kind:?}"))),
    };
    if names.len() != values.len() {
        return Err(PyValueError::new_err(format!(
            "a dataclass {kind} needs a value for each of its {} slot names, got {}",
            names.len(),
            values.len()
        )));
    }
    if names.len() < 64 && missing >> names.len() != 0 {
        return Err(PyValueError::new_err(format!(
            "a dataclass {kind}'s missing slots {missing:#x} are not among its {} slots",
            names.len()
        )));
    }
    let part = new_instance(class)?;
    let own_names = class_slot_names(class);
    for (index, (name, value)) in names.iter().zip(values.iter()).enumerate() {
        let name = name
            .cast_into::<PyString>()
            .map_err(|_| PyTypeError::new_err(format!("a dataclass {kind}'s slot names must be str")))?;
        let name = interned_name(name, own_names.as_ref().and_then(|own| own.get_item(index).ok()));
        let value = if index < 64 && missing & (1 << index) != 0 {
            objects::dataclass_missing(py)?.clone()
        } else if is_field {
            field_value(&name, value)?
        } else {
            value
        };
        set_slot(&part, &name, &value)?;
    }
    Ok(part)
}

/// The class's `__slots__` tuple, as its dict holds it.
fn class_slot_names<'py>(class: &Bound<'py, PyAny>) -> Option<Bound<'py, PyTuple>> {
    let py = class.py();
    // SAFETY: a type and a str; a borrowed result, null without an
    // exception on a miss.
    let found = unsafe { _PyType_Lookup(class.as_ptr().cast(), intern!(py, "__slots__").as_ptr()) };
    // SAFETY: a live object the type holds.
    let found = unsafe { Borrowed::from_ptr_or_opt(py, found) }?;
    found.to_owned().cast_into::<PyTuple>().ok()
}

/// `name` as the class's own slot name at its place when the two read the
/// same (the pickle's is a new str on every load; the class's is interned,
/// its hash known, which spares `setattr` interning it), else `name`
/// interned.
fn interned_name<'py>(name: Bound<'py, PyString>, own: Option<Bound<'py, PyAny>>) -> Bound<'py, PyString> {
    if let Some(own) = own.and_then(|own| own.cast_into::<PyString>().ok())
        && same_text(&own, &name)
    {
        return own;
    }
    let py = name.py();
    let mut pointer = name.into_ptr();
    // SAFETY: a new reference to an exact or sub- str, which the call
    // replaces by a new reference to the interned one.
    unsafe {
        ffi::PyUnicode_InternInPlace(&mut pointer);
        Bound::from_owned_ptr(py, pointer).cast_into_unchecked()
    }
}

fn same_text(one: &Bound<'_, PyString>, other: &Bound<'_, PyString>) -> bool {
    str_bytes(one).is_some_and(|one| str_bytes(other) == Some(one))
}

/// `setattr(part, name, value)`, stored straight into the slot where that
/// is all `setattr` would do (~150 instructions less a slot, eleven slots
/// a field).
fn set_slot(part: &Bound<'_, PyAny>, name: &Bound<'_, PyString>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    match writable_slot_offset(part, name.as_any()) {
        Some(offset) => {
            // SAFETY: the offset `writable_slot_offset` found for `part`.
            unsafe { store_slot(part, offset, value) };
            Ok(())
        }
        None => part.setattr(name, value),
    }
}

/// `class.__new__(class)`, as NEWOBJ makes an object with no arguments.
fn new_instance<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    // SAFETY: `class` is one of the two dataclasses types (a type, with the
    // `tp_new` of `object`); the call returns a new reference or null with
    // an exception set.
    unsafe {
        let kind = class.as_ptr().cast::<ffi::PyTypeObject>();
        let Some(new) = (*kind).tp_new else {
            return Err(PyTypeError::new_err("a dataclass part's class cannot be instantiated"));
        };
        let empty = PyTuple::empty(py);
        Bound::from_owned_ptr_or_err(py, new(kind, empty.as_ptr(), std::ptr::null_mut()))
    }
}

/// A `Field` slot's value from its travelling form: the kind marker by
/// name, None for the empty metadata. `name` is interned, so compared by
/// address.
fn field_value<'py>(name: &Bound<'py, PyString>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = name.py();
    if name.is(intern!(py, "_field_type")) {
        let marker = value
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("a dataclass field's kind marker travels as its name"))?;
        return Ok(super::dataclass_field_marker(py, &marker.to_cow()?)?.clone());
    }
    if value.is_none() && name.is(intern!(py, "metadata")) {
        return Ok(objects::dataclass_empty_metadata(py)?.clone());
    }
    Ok(value)
}
