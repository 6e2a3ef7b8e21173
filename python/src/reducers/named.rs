//! Objects that are rebuilt from a name: loggers, the typing variables
//! (`TypeVar`, `ParamSpec`, `TypeVarTuple`, `NewType`: by reference when
//! importable, else by value and tracked like classes, so every load in a
//! process yields the same object), and the field markers and sentinels of
//! `dataclasses` (whose identity the dataclass machinery checks).
//!
//! cloudpickle 3.1 handles only TypeVar and the field markers; the other
//! typing variables and the sentinels go beyond it.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::call;
use crate::target;
use crate::{byvalue, cpython, objects, registry, tracker};

/// Loading gives back the loading process's logger of that name.
#[pyfunction]
pub(crate) fn reduce_logger<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let name = obj.getattr(intern!(obj.py(), "name"))?;
    call(objects::get_logger(obj.py())?, (name,))
}

#[pyfunction]
pub(crate) fn reduce_root_logger<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    call(objects::get_logger(obj.py())?, ())
}

/// `getattr(module, name)` when `name` imports back to `obj` from a module
/// not registered for by-value.
fn by_reference<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    match byvalue::importable_module(obj, Some(name))? {
        Some(module) if !registry::is_registered(&module)? => Ok(Some(call(objects::getattr_fn(py)?, (module, name))?)),
        _ => Ok(None),
    }
}

#[pyfunction]
pub(crate) fn reduce_typevar<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    let parts = (
        name,
        obj.getattr(intern!(py, "__bound__"))?,
        obj.getattr(intern!(py, "__constraints__"))?,
        obj.getattr(intern!(py, "__covariant__"))?,
        obj.getattr(intern!(py, "__contravariant__"))?,
        tracker::id_of(obj)?,
    );
    call(target::active(py)?.make_typevar.bind(py), parts)
}

#[pyfunction]
pub(crate) fn reduce_paramspec<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    let make = target::active(py)?.make_paramspec(py, &by_value_label("ParamSpec", obj, &name)?)?;
    let parts = (
        name,
        obj.getattr(intern!(py, "__bound__"))?,
        obj.getattr(intern!(py, "__covariant__"))?,
        obj.getattr(intern!(py, "__contravariant__"))?,
        tracker::id_of(obj)?,
    );
    call(make, parts)
}

#[pyfunction]
pub(crate) fn reduce_typevartuple<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let name = obj.getattr(intern!(py, "__name__"))?;
    if let Some(reduced) = by_reference(obj, &name)? {
        return Ok(reduced);
    }
    let make = target::active(py)?.make_typevartuple(py, &by_value_label("TypeVarTuple", obj, &name)?)?;
    call(make, (name, tracker::id_of(obj)?))
}

#[pyfunction]
pub(crate) fn reduce_newtype<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let qualname = obj.getattr(intern!(py, "__qualname__"))?;
    if let Some(reduced) = by_reference(obj, &qualname)? {
        return Ok(reduced);
    }
    let make = target::active(py)?.make_newtype(py, &by_value_label("NewType", obj, &qualname)?)?;
    let parts = (
        qualname,
        obj.getattr(intern!(py, "__supertype__"))?,
        obj.getattr(intern!(py, "__module__"))?,
        tracker::id_of(obj)?,
    );
    call(make, parts)
}

/// How an error names a typing variable that must travel by value, e.g.
/// "ParamSpec 'P' of module '__main__' (by value)".
fn by_value_label(kind: &str, obj: &Bound<'_, PyAny>, name: &Bound<'_, PyAny>) -> PyResult<String> {
    let module = byvalue::optional_attr(obj, intern!(obj.py(), "__module__"))?
        .map_or_else(|| Ok("?".to_owned()), |m| m.str().map(|s| s.to_string()))?;
    Ok(format!("{kind} {} of module {module:?} (by value)", name.repr()?))
}

#[pyfunction]
pub(crate) fn reduce_dataclass_field_marker<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let name = obj.getattr(intern!(obj.py(), "name"))?;
    call(
        target::active(obj.py())?
            .get_dataclass_field_type_sentinel
            .bind(obj.py()),
        (name,),
    )
}

/// `dataclasses.MISSING` and `dataclasses.KW_ONLY`, by name: the dataclass
/// machinery, and the libraries that read a class's fields, tell a field
/// without a default by `field.default is MISSING`, which a new instance of
/// the sentinel's class (what its default reduction makes) fails. Another
/// instance of those classes (one an older pickle made) keeps its default
/// reduction: a table reducer must return one, not `NotImplemented`.
#[pyfunction]
pub(crate) fn reduce_dataclass_sentinel<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    if obj.is(objects::dataclass_missing(py)?) {
        return Ok(intern!(py, "MISSING").clone().into_any());
    }
    if obj.is(objects::dataclass_kw_only(py)?) {
        return Ok(intern!(py, "KW_ONLY").clone().into_any());
    }
    obj.call_method1(intern!(py, "__reduce_ex__"), (2,))
}

/// A dataclass's `Field`s and `_DataclassParams`: for the native target,
/// `make_dataclass_part(kind, __slots__, values[, missing])`, one call from
/// the slot values in the order of the class's `__slots__` (a tuple the
/// pickle memoizes, so it is spelled once). A field's kind marker travels
/// by name, the shared empty metadata as None, and `MISSING` as None with
/// its slot's bit set in `missing`: naming `dataclasses.MISSING` would cost
/// the unpickler a find per pickle. Other targets, and a part with an unset
/// slot or a marker of its own, keep the default reduction.
#[pyfunction]
pub(crate) fn reduce_dataclass_part<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let reconstructors = target::active(py)?;
    if reconstructors.target == target::Target::Native
        && let Some((kind, names, values, missing)) = dataclass_part(obj)?
    {
        let make = reconstructors.make_dataclass_part(py, "a dataclass part")?;
        return if missing == 0 {
            call(make, (kind, names, values))
        } else {
            call(make, (kind, names, values, missing))
        };
    }
    obj.call_method1(intern!(py, "__reduce_ex__"), (2,))
}

/// The arguments of `make_dataclass_part`, or None where the part is not
/// one it makes exactly.
type DataclassPart<'py> = (&'static str, Bound<'py, PyTuple>, Bound<'py, PyTuple>, u64);

fn dataclass_part<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<DataclassPart<'py>>> {
    let py = obj.py();
    let class = obj.get_type();
    let is_field = class.is(objects::dataclass_field_class(py)?);
    if !is_field && !class.is(objects::dataclass_params_class(py)?) {
        return Ok(None);
    }
    let Ok(names) = class.getattr(intern!(py, "__slots__"))?.cast_into::<PyTuple>() else {
        return Ok(None);
    };
    if names.len() > 64 {
        return Ok(None);
    }
    let mut values = Vec::with_capacity(names.len());
    let mut missing = 0u64;
    for (index, name) in names.iter().enumerate() {
        let Ok(name) = name.cast::<PyString>() else {
            return Ok(None);
        };
        let Some(value) = slot_value(obj, name)? else {
            return Ok(None);
        };
        let value = if !is_field {
            value
        } else if value.is(objects::dataclass_missing(py)?) {
            missing |= 1 << index;
            py.None().into_bound(py)
        } else if cpython::str_bytes(name) == Some(b"_field_type") {
            match field_marker_name(&value)? {
                Some(marker) => marker,
                None => return Ok(None),
            }
        } else if cpython::str_bytes(name) == Some(b"metadata") && value.is(objects::dataclass_empty_metadata(py)?) {
            py.None().into_bound(py)
        } else {
            value
        };
        values.push(value);
    }
    let kind = if is_field { "Field" } else { "_DataclassParams" };
    Ok(Some((kind, names, PyTuple::new(py, values)?, missing)))
}

/// `getattr(obj, name)`, None when unset: read in place where that is what
/// `getattr` would do (the generic `__getattribute__`, and a plain object
/// slot under the name; see `plain_slot_offset`).
fn slot_value<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let address = |slot: Option<ffi::getattrofunc>| slot.map(|f| f as usize);
    // SAFETY: reading the slot of a live type object.
    let generic =
        unsafe { address((*ffi::Py_TYPE(obj.as_ptr())).tp_getattro) == address(Some(ffi::PyObject_GenericGetAttr)) };
    match generic
        .then(|| cpython::plain_slot_offset(obj, name.as_any()))
        .flatten()
    {
        // SAFETY: the offset `plain_slot_offset` found for `obj`.
        Some(offset) => Ok(unsafe { cpython::read_slot(obj, offset) }),
        None => byvalue::optional_attr(obj, name),
    }
}

/// The name `make_dataclass_part` finds a field's kind marker by: one of
/// `dataclasses`' three, never another object of their class.
fn field_marker_name<'py>(marker: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = marker.py();
    let known = [
        (objects::dataclass_field(py)?, intern!(py, "_FIELD")),
        (objects::dataclass_field_classvar(py)?, intern!(py, "_FIELD_CLASSVAR")),
        (objects::dataclass_field_initvar(py)?, intern!(py, "_FIELD_INITVAR")),
    ];
    Ok(known
        .into_iter()
        .find(|(object, _)| marker.is(object))
        .map(|(_, name)| name.clone().into_any()))
}
