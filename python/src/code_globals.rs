//! Which globals a function needs, read from its bytecode, and which
//! submodules (`pkg.sub.attr` in the code) must be imported again on load.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyModule, PySet, PyString, PyTuple};

use crate::code_cache::CodeCache;
use crate::{objects, version};

/// `{name: globals[name]}` for every global that `code`, or a code object
/// nested in its constants, loads, stores or deletes; in first-use order so
/// that the pickle bytes do not depend on hashing.
pub(crate) fn used_globals<'py>(
    code: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    // The values are read on every dump: the globals may have changed.
    let used = PyDict::new(code.py());
    for name in global_names(code)?.iter_borrowed() {
        if let Some(value) = globals.get_item(name)? {
            used.set_item(name, value)?;
        }
    }
    Ok(used)
}

/// The names `used_globals` looks up, read from the bytecode once per code
/// object.
pub(crate) fn global_names<'py>(code: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    static NAMES: CodeCache = CodeCache::new();
    NAMES.get_or_make(code, || {
        let names = PyDict::new(code.py());
        collect_names(code, &names)?;
        PyTuple::new(code.py(), names.keys())
    })
}

/// The global names `code` and its nested code objects use, once each, in
/// first-use order (the keys of `names`).
fn collect_names<'py>(code: &Bound<'py, PyAny>, names: &Bound<'py, PyDict>) -> PyResult<()> {
    let py = code.py();
    let co_names = code.getattr(intern!(py, "co_names"))?.cast_into::<PyTuple>()?;
    let bytecode = code.getattr(intern!(py, "co_code"))?.cast_into::<PyBytes>()?;
    for index in global_name_indices(bytecode.as_bytes(), version::opcodes(py)?) {
        names.set_item(co_names.get_item(index as usize)?, py.None())?;
    }
    let consts = code.getattr(intern!(py, "co_consts"))?.cast_into::<PyTuple>()?;
    for constant in consts.iter_borrowed() {
        if is_code(&constant) {
            collect_names(&constant, names)?;
        }
    }
    Ok(())
}

fn is_code(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: a type check on a live object.
    unsafe { pyo3::ffi::PyCode_Check(obj.as_ptr()) != 0 }
}

/// Indices into `co_names` of the global-access instructions.
fn global_name_indices(bytecode: &[u8], ops: &version::Opcodes) -> Vec<u32> {
    let mut indices = Vec::new();
    let mut extended: u32 = 0;
    for unit in bytecode.chunks_exact(2) {
        let (op, arg) = (unit[0], u32::from(unit[1]) | extended);
        if op == ops.extended_arg {
            extended = arg << 8;
            continue;
        }
        extended = 0;
        if op == ops.load_global {
            indices.push(arg >> ops.load_global_shift);
        } else if op == ops.store_global || op == ops.delete_global {
            indices.push(arg);
        }
    }
    indices
}

/// Submodules of the packages among `dependencies` that `code` can reach
/// as `pkg.sub...`: every dotted part of their name is one of `co_names`.
/// Shipping them in the state makes the loading side import them. Most
/// functions use no package, so nothing is made until one is met.
pub(crate) fn imported_submodules<'py>(
    code: &Bound<'py, PyAny>,
    dependencies: impl Iterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = code.py();
    let mut found = Vec::new();
    let mut names: Option<Bound<'py, PySet>> = None;
    for dependency in dependencies {
        let Some(prefix) = package_prefix(&dependency)? else {
            continue;
        };
        let names = match &names {
            Some(names) => names,
            None => names.insert(PySet::new(
                py,
                code.getattr(intern!(py, "co_names"))?.cast_into::<PyTuple>()?,
            )?),
        };
        let modules = objects::sys_modules(py).copy()?;
        for (name, module) in modules.iter() {
            let Ok(name) = name.cast::<PyString>() else { continue };
            let Some(rest) = name.to_str()?.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if rest
                .split('.')
                .try_fold(true, |all, part| names.contains(part).map(|c| all && c))?
            {
                found.push(module);
            }
        }
    }
    Ok(found)
}

/// `"pkg."` when `obj` is a package (a module with a non-empty `__package__`).
fn package_prefix(obj: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let py = obj.py();
    let key = intern!(py, "__package__");
    // SAFETY: an exact-type check on a live object.
    let plain_module = unsafe { pyo3::ffi::PyModule_CheckExact(obj.as_ptr()) } != 0;
    let in_dict = if plain_module {
        // A plain module's `__package__` is in its dict (the type defines
        // none): read there, without the attribute machinery.
        // SAFETY: checked to be a module just above.
        unsafe { obj.cast_unchecked::<PyModule>() }.dict().get_item(key)?
    } else {
        None
    };
    let package = if in_dict.is_some() {
        in_dict
    } else if may_be_module(obj) && obj.is_instance(objects::module_type(py)?)? {
        crate::byvalue::optional_attr(obj, key)?
    } else {
        return Ok(None);
    };
    let Some(package) = package else {
        return Ok(None);
    };
    if !package.is_truthy()? {
        return Ok(None);
    }
    let name: String = obj.getattr(intern!(py, "__name__"))?.extract()?;
    Ok(Some(name + "."))
}

/// False when `isinstance(obj, ModuleType)` is sure to be: `obj`'s type
/// is not a module type and is builtin (a builtin type has no `__class__`
/// of its own for `isinstance` to ask, which would cost it an attribute
/// lookup per global).
fn may_be_module(obj: &Bound<'_, PyAny>) -> bool {
    // SAFETY: type checks on a live object.
    unsafe {
        let kind = pyo3::ffi::Py_TYPE(obj.as_ptr());
        // The flag first: the module check walks the MRO of a builtin type.
        pyo3::ffi::PyType_GetFlags(kind) & pyo3::ffi::Py_TPFLAGS_HEAPTYPE != 0
            || pyo3::ffi::PyModule_Check(obj.as_ptr()) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPS: version::Opcodes = version::Opcodes {
        load_global: 116,
        store_global: 97,
        delete_global: 98,
        extended_arg: 144,
        load_global_shift: 1,
    };

    #[test]
    fn reads_global_ops_and_skips_others() {
        let code = [116, 4, 0, 0, 97, 1, 100, 3, 98, 2];
        assert_eq!(global_name_indices(&code, &OPS), vec![2, 1, 2]);
    }

    #[test]
    fn extended_arg_widens_the_next_argument() {
        let code = [144, 1, 97, 2, 97, 3];
        assert_eq!(global_name_indices(&code, &OPS), vec![258, 3]);
    }

    use crate::testing::{module, with_python};

    const SOURCE: &std::ffi::CStr = c"
import xml.dom.minidom, json
A, B, C, UNUSED = 1, 2, 3, 4
def outer(x):
    global C
    C = A + x
    def inner():
        return B + missing_name
    del C
    return inner, x.A, [A for _ in ()], xml.dom.minidom, json.dumps
";

    fn names_of(dict: &Bound<'_, PyDict>) -> Vec<String> {
        dict.keys().iter().map(|key| key.extract().unwrap()).collect()
    }

    #[test]
    fn used_globals_follow_nested_code_in_first_use_order() {
        with_python(|py| {
            let m = module(py, "fp_test_code_globals_used", SOURCE);
            let code = m.getattr("outer").unwrap().getattr("__code__").unwrap();
            let globals = m.getattr("__dict__").unwrap().cast_into::<PyDict>().unwrap();
            let used = used_globals(&code, &globals).unwrap();
            // Attribute reads (x.A), locals and names missing from globals do not count.
            assert_eq!(names_of(&used), ["A", "C", "xml", "json", "B"]);
            assert!(used.get_item("A").unwrap().unwrap().eq(1).unwrap());
        });
    }

    #[test]
    fn submodules_reached_through_attributes_are_found() {
        with_python(|py| {
            let m = module(py, "fp_test_code_globals_submodules", SOURCE);
            let code = m.getattr("outer").unwrap().getattr("__code__").unwrap();
            let dependencies = [
                m.getattr("xml").unwrap(),
                m.getattr("json").unwrap(),
                m.getattr("A").unwrap(),
            ];
            let found = imported_submodules(&code, dependencies.into_iter()).unwrap();
            let names: Vec<String> = found
                .iter()
                .map(|module| module.getattr("__name__").unwrap().extract().unwrap())
                .collect();
            // `xml.dom` and `xml.dom.minidom` are spelled out in the code; json's
            // submodules (json.decoder...) are not, so they stay out.
            assert!(names.contains(&"xml.dom".to_owned()), "{names:?}");
            assert!(names.contains(&"xml.dom.minidom".to_owned()), "{names:?}");
            assert!(names.iter().all(|name| name.starts_with("xml.")), "{names:?}");
        });
    }
}
