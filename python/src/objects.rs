//! Python objects that the pickler touches on every call, imported once per
//! process so that the hot path never goes through `import` or attribute
//! lookups on modules.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

macro_rules! imported {
    ($($name:ident = $module:literal . $attr:literal;)*) => {$(
        pub(crate) fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
            static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    )*};
}

imported! {
    function_type = "types"."FunctionType";
    code_type = "types"."CodeType";
    method_type = "types"."MethodType";
    mappingproxy_type = "types"."MappingProxyType";
    module_type = "types"."ModuleType";
    resolve_bases = "types"."resolve_bases";
    prepare_class = "types"."prepare_class";
    builtins_dict = "builtins"."__dict__";
    getattr_fn = "builtins"."getattr";
    bytes_type = "builtins"."bytes";
    property_type = "builtins"."property";
    classmethod_type = "builtins"."classmethod";
    staticmethod_type = "builtins"."staticmethod";
    abc_meta = "abc"."ABCMeta";
    abc_get_dump = "abc"."_get_dump";
    enum_type = "enum"."Enum";
    enum_meta = "enum"."EnumMeta";
    weakset_type = "weakref"."WeakSet";
    get_logger = "logging"."getLogger";
    typevar_type = "typing"."TypeVar";
    ordered_dict = "collections"."OrderedDict";
    blake2b = "hashlib"."blake2b";
    copyreg_dispatch_table = "copyreg"."dispatch_table";
    copyreg_newobj = "copyreg"."__newobj__";
    pickling_error = "pickle"."PicklingError";
    pickle_buffer_type = "pickle"."PickleBuffer";
    copyreg_extension_registry = "copyreg"."_extension_registry";
    reverse_name_mapping = "_compat_pickle"."REVERSE_NAME_MAPPING";
    reverse_import_mapping = "_compat_pickle"."REVERSE_IMPORT_MAPPING";
    codecs_encode = "_codecs"."encode";
    functools_partial = "functools"."partial";
    dataclass_field = "dataclasses"."_FIELD";
    dataclass_field_classvar = "dataclasses"."_FIELD_CLASSVAR";
    dataclass_field_initvar = "dataclasses"."_FIELD_INITVAR";
    dataclass_missing = "dataclasses"."MISSING";
    dataclass_kw_only = "dataclasses"."KW_ONLY";
    dataclass_field_class = "dataclasses"."Field";
    dataclass_params_class = "dataclasses"."_DataclassParams";
    dataclass_empty_metadata = "dataclasses"."_EMPTY_METADATA";
}

/// The `types` module, for reconstructors that look classes up in it on
/// every load.
pub(crate) fn types_module(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static CELL: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    CELL.get_or_try_init(py, || Ok::<_, PyErr>(py.import("types")?.unbind()))
        .map(|module| module.bind(py))
}

/// A `pickle.PicklingError` with `message`.
pub(crate) fn new_pickling_error(py: Python<'_>, message: String) -> PyErr {
    match pickling_error(py).and_then(|kind| Ok(kind.cast::<pyo3::types::PyType>()?.clone())) {
        Ok(kind) => PyErr::from_type(kind, message),
        Err(err) => err,
    }
}

/// `sys.modules` as the interpreter sees it now (a program may replace it).
pub(crate) fn sys_modules(py: Python<'_>) -> Bound<'_, PyDict> {
    // SAFETY: PyImport_GetModuleDict returns a borrowed, never-null dict while attached.
    unsafe { Bound::from_borrowed_ptr(py, pyo3::ffi::PyImport_GetModuleDict()).cast_into_unchecked::<PyDict>() }
}

/// The C pickler's own `dispatch_table` slot (a member descriptor), which
/// `flightpickle.Pickler.dispatch_table` shadows for attribute lookup.
pub(crate) fn c_pickler_dispatch_table(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    c_pickler_descriptor(py, &CELL, "dispatch_table")
}

/// The C pickler's own `persistent_id` (a getset: raises AttributeError
/// when the pickler has none), `fast` flag and `memo` (getter and setter).
pub(crate) fn c_pickler_persistent_id(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    c_pickler_descriptor(py, &CELL, "persistent_id")
}

pub(crate) fn c_pickler_fast(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    c_pickler_descriptor(py, &CELL, "fast")
}

pub(crate) fn c_pickler_memo(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    c_pickler_descriptor(py, &CELL, "memo")
}

/// `_pickle.Pickler.__dict__[name]`, found once into `cell`.
fn c_pickler_descriptor<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        let pickler = py.import("_pickle")?.getattr("Pickler")?;
        Ok::<_, PyErr>(pickler.getattr("__dict__")?.get_item(name)?.unbind())
    })
    .map(|descriptor| descriptor.bind(py))
}

/// `dict(mapping)`. Not pyo3's cast to `PyMapping`: that cast runs an
/// `isinstance` check whose errors (a RecursionError deep in a pickle) it
/// swallows, reporting a misleading TypeError in their place.
pub(crate) fn dict_copy<'py>(mapping: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let py = mapping.py();
    Ok(py.get_type::<PyDict>().call1((mapping,))?.cast_into::<PyDict>()?)
}
