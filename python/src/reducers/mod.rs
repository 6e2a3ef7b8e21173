//! The reducers, one file per kind of object, and the table that maps exact
//! types to them (the first map of `Pickler.dispatch_table`). Functions and
//! classes are not in the table: the C pickler never consults the table for
//! them, so `PicklerState.reducer_override` dispatches those two.
//!
//! A reducer returns what `__reduce__` would: `(callable, args)` or the
//! 6-tuple `(callable, args, state, None, None, state_setter)`.

pub(crate) mod class;
pub(crate) mod class_cache;
pub(crate) mod code;
mod descriptors;
mod file;
pub(crate) mod function;
mod module;
mod named;
mod views;

use pyo3::BoundObject;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple};

static REGISTERED: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

/// The table made by `table`, which `_native` exports as `REDUCERS`.
pub(crate) fn registered(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    REGISTERED
        .get(py)
        .map(|table| table.bind(py))
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("flightpickle._native is not initialised"))
}

/// `{type: reducer}` for the kinds that plain `pickle` cannot handle or
/// handles by reference only. Each key is a Python expression for the type;
/// None where the running Python does not have it.
pub(crate) fn table<'py>(m: &Bound<'py, PyModule>) -> PyResult<Bound<'py, PyDict>> {
    let py = m.py();
    let entries = [
        (c"classmethod", wrap_pyfunction!(descriptors::reduce_classmethod, m)?),
        (c"staticmethod", wrap_pyfunction!(descriptors::reduce_classmethod, m)?),
        (
            c"abc.abstractclassmethod",
            wrap_pyfunction!(descriptors::reduce_classmethod, m)?,
        ),
        (
            c"abc.abstractstaticmethod",
            wrap_pyfunction!(descriptors::reduce_classmethod, m)?,
        ),
        (c"property", wrap_pyfunction!(descriptors::reduce_property, m)?),
        (
            c"abc.abstractproperty",
            wrap_pyfunction!(descriptors::reduce_property, m)?,
        ),
        (
            c"types.GetSetDescriptorType",
            wrap_pyfunction!(descriptors::reduce_getset, m)?,
        ),
        (c"types.MethodType", wrap_pyfunction!(descriptors::reduce_method, m)?),
        (c"types.CellType", wrap_pyfunction!(views::reduce_cell, m)?),
        (c"types.CodeType", wrap_pyfunction!(code::reduce_code, m)?),
        (c"types.ModuleType", wrap_pyfunction!(module::reduce_module, m)?),
        (
            c"types.MappingProxyType",
            wrap_pyfunction!(views::reduce_mappingproxy, m)?,
        ),
        (c"memoryview", wrap_pyfunction!(views::reduce_memoryview, m)?),
        (c"weakref.WeakSet", wrap_pyfunction!(views::reduce_weakset, m)?),
        (c"type({}.keys())", wrap_pyfunction!(views::reduce_dict_keys, m)?),
        (c"type({}.values())", wrap_pyfunction!(views::reduce_dict_values, m)?),
        (c"type({}.items())", wrap_pyfunction!(views::reduce_dict_items, m)?),
        (
            c"type(collections.OrderedDict().keys())",
            wrap_pyfunction!(views::reduce_odict_keys, m)?,
        ),
        (
            c"type(collections.OrderedDict().values())",
            wrap_pyfunction!(views::reduce_odict_values, m)?,
        ),
        (
            c"type(collections.OrderedDict().items())",
            wrap_pyfunction!(views::reduce_odict_items, m)?,
        ),
        (c"io.TextIOWrapper", wrap_pyfunction!(file::reduce_text_file, m)?),
        (c"logging.Logger", wrap_pyfunction!(named::reduce_logger, m)?),
        (c"logging.RootLogger", wrap_pyfunction!(named::reduce_root_logger, m)?),
        (c"typing.TypeVar", wrap_pyfunction!(named::reduce_typevar, m)?),
        (c"typing.ParamSpec", wrap_pyfunction!(named::reduce_paramspec, m)?),
        (
            c"getattr(typing, 'TypeVarTuple', None)",
            wrap_pyfunction!(named::reduce_typevartuple, m)?,
        ),
        (c"typing.NewType", wrap_pyfunction!(named::reduce_newtype, m)?),
        (
            c"dataclasses._FIELD_BASE",
            wrap_pyfunction!(named::reduce_dataclass_field_marker, m)?,
        ),
        (
            c"dataclasses._MISSING_TYPE",
            wrap_pyfunction!(named::reduce_dataclass_sentinel, m)?,
        ),
        (
            c"getattr(dataclasses, '_KW_ONLY_TYPE', None)",
            wrap_pyfunction!(named::reduce_dataclass_sentinel, m)?,
        ),
        (c"dataclasses.Field", wrap_pyfunction!(named::reduce_dataclass_part, m)?),
        (
            c"dataclasses._DataclassParams",
            wrap_pyfunction!(named::reduce_dataclass_part, m)?,
        ),
    ];
    let scope = PyDict::new(py);
    py.run(
        c"import abc, collections, dataclasses, io, logging, types, typing, weakref",
        Some(&scope),
        None,
    )?;
    let table = PyDict::new(py);
    for (type_expr, reducer) in entries {
        let kind = py.eval(type_expr, Some(&scope), None)?;
        if !kind.is_none() {
            table.set_item(kind, reducer)?;
        }
    }
    Ok(REGISTERED.get_or_init(py, || table.unbind()).bind(py).clone())
}

/// `(callable, args)`.
pub(crate) fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: impl IntoPyObject<'py, Target = PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    let args = args.into_pyobject(callable.py()).map_err(Into::into)?;
    Ok(PyTuple::new(callable.py(), [callable.clone(), args.into_any().into_bound()])?.into_any())
}

/// `(callable, args, state, None, None, state_setter)`: the state setter
/// runs after the object is memoized, so the state may refer back to it.
pub(crate) fn call_then_set<'py>(
    callable: &Bound<'py, PyAny>,
    args: Bound<'py, PyAny>,
    state: Bound<'py, PyAny>,
    state_setter: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = callable.py();
    let none = py.None().into_bound(py);
    let items = [callable.clone(), args, state, none.clone(), none, state_setter.clone()];
    Ok(PyTuple::new(py, items)?.into_any())
}
