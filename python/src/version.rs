//! Everything that depends on the running Python's minor version lives here:
//! the argument layout of `types.CodeType(...)`, the global-access opcodes
//! and the class attributes that must not travel.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyTuple};

/// `types.CodeType` positional arguments on 3.11 to 3.13 (3.14 keeps them).
const CODE_ARGS_311: &[&str] = &[
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
    "co_nlocals",
    "co_stacksize",
    "co_flags",
    "co_code",
    "co_consts",
    "co_names",
    "co_varnames",
    "co_filename",
    "co_name",
    "co_qualname",
    "co_firstlineno",
    "co_linetable",
    "co_exceptiontable",
    "co_freevars",
    "co_cellvars",
];

/// How many counts lead `CodeType(...)`'s arguments on every version:
/// `co_argcount`, `co_posonlyargcount`, `co_kwonlyargcount`, `co_nlocals`,
/// `co_stacksize` and `co_flags`.
pub(crate) const CODE_COUNTS: usize = 6;

/// Where `CodeType(...)`'s arguments are in a function's code fields (see
/// `reducers::code::native_code_fields`).
#[derive(Clone, Copy)]
pub(crate) struct FieldLayout {
    /// Where the arguments start: after the mark, if any.
    pub(crate) start: usize,
    /// Whether the counts come packed in one bytes object.
    pub(crate) packed: bool,
}

impl FieldLayout {
    /// The layout of `fields` whose arguments start at `start`: the counts
    /// are packed when a bytes object follows the mark.
    pub(crate) fn of(fields: &Bound<'_, PyTuple>, start: usize) -> Self {
        let packed = start > 0
            && fields
                .get_borrowed_item(start)
                .is_ok_and(|field| field.is_exact_instance_of::<PyBytes>());
        Self { start, packed }
    }

    /// The index in the fields of the argument at `position`; with packed
    /// counts, a count's index is the mark's (the caller reads the count
    /// from the packed bytes instead).
    pub(crate) fn index(self, position: usize) -> usize {
        match (self.packed, position) {
            (false, _) => self.start + position,
            (true, position) if position < CODE_COUNTS => 0,
            (true, position) => self.start + 1 + position - CODE_COUNTS,
        }
    }
}

/// 3.10 has neither `co_qualname` nor `co_exceptiontable`.
const CODE_ARGS_310: &[&str] = &[
    "co_argcount",
    "co_posonlyargcount",
    "co_kwonlyargcount",
    "co_nlocals",
    "co_stacksize",
    "co_flags",
    "co_code",
    "co_consts",
    "co_names",
    "co_varnames",
    "co_filename",
    "co_name",
    "co_firstlineno",
    "co_linetable",
    "co_freevars",
    "co_cellvars",
];

/// The running Python's (major, minor), read once: `version_info()` parses
/// `sys.version` on every call (~0.5k instructions), and these questions
/// are asked on every load of a function and every dump of a class.
pub(crate) fn running(py: Python<'_>) -> (u8, u8) {
    static VERSION: PyOnceLock<(u8, u8)> = PyOnceLock::new();
    *VERSION.get_or_init(py, || {
        let info = py.version_info();
        (info.major, info.minor)
    })
}

/// The mark of this Python's bytecode in a native function's code fields
/// (see `reducers::code::native_code_fields`): -(100 × major + minor).
pub(crate) fn code_mark(py: Python<'_>) -> i64 {
    let (major, minor) = running(py);
    -(100 * i64::from(major) + i64::from(minor))
}

/// The Python version a code mark names, as "3.11".
pub(crate) fn marked_version(mark: i64) -> String {
    let version = mark.unsigned_abs();
    format!("{}.{}", version / 100, version % 100)
}

pub(crate) fn code_args(py: Python<'_>) -> &'static [&'static str] {
    if running(py) >= (3, 11) {
        CODE_ARGS_311
    } else {
        CODE_ARGS_310
    }
}

/// Class-dict entries that Python recreates by itself and that cannot be
/// pickled (3.14's annotation function closes over the class namespace).
pub(crate) fn recreated_class_attrs(py: Python<'_>) -> &'static [&'static str] {
    if running(py) >= (3, 14) {
        &["__annotate_func__"]
    } else {
        &[]
    }
}

/// Whether `setattr(cls, "__firstlineno__", v)` must be repeated (3.13+
/// drops it when other attributes are set).
pub(crate) fn restores_firstlineno(py: Python<'_>) -> bool {
    running(py) >= (3, 13)
}

/// The bytecode facts needed to list the globals a code object touches.
pub(crate) struct Opcodes {
    pub(crate) load_global: u8,
    pub(crate) store_global: u8,
    pub(crate) delete_global: u8,
    pub(crate) extended_arg: u8,
    /// 3.11 packs a "push NULL" flag in the low bit of LOAD_GLOBAL's argument.
    pub(crate) load_global_shift: u32,
}

/// Per opcode (specialized ones as their base), how many inline cache
/// code units follow it; 255 for an opcode no pickled bytecode may hold
/// (an instrumented one). None before 3.11, whose bytecode has no caches
/// (see `reconstruct::code`).
pub(crate) fn inline_caches(py: Python<'_>) -> PyResult<Option<&'static [u8; 256]>> {
    static CELL: PyOnceLock<Option<[u8; 256]>> = PyOnceLock::new();
    let table = CELL.get_or_try_init(py, || {
        if running(py) < (3, 11) {
            return Ok(None);
        }
        let opcode = py.import("opcode")?;
        let opmap = py
            .import("dis")?
            .getattr("_all_opmap")
            .or_else(|_| opcode.getattr("opmap"))?;
        let entries = opcode.getattr("_inline_cache_entries")?;
        // A list by opcode (3.12), or a dict by name (3.13).
        let caches_of = |name: &Bound<'_, PyAny>| -> PyResult<u8> {
            let count = match entries.cast::<pyo3::types::PyList>() {
                Ok(list) => list.get_item(opmap.get_item(name)?.extract::<usize>()?)?,
                Err(_) => entries.call_method1("get", (name, 0))?,
            };
            count.extract()
        };
        let mut table = [0u8; 256];
        let opnames = opcode.getattr("opmap")?;
        for (name, number) in opnames.cast::<pyo3::types::PyDict>()?.iter() {
            if let Ok(number) = number.extract::<usize>()
                && number < 256
            {
                table[number] = caches_of(&name)?;
            }
        }
        if let Ok(specializations) = opcode.getattr("_specializations") {
            for (base, names) in specializations.cast::<pyo3::types::PyDict>()?.iter() {
                let caches = caches_of(&base)?;
                for name in names.try_iter()? {
                    if let Ok(number) = opmap.get_item(name?)?.extract::<usize>()
                        && number < 256
                    {
                        table[number] = caches;
                    }
                }
            }
        }
        let instrumented = opcode
            .getattr("MIN_INSTRUMENTED_OPCODE")
            .and_then(|first| first.extract::<usize>())
            .unwrap_or(256);
        for caches in table.iter_mut().skip(instrumented) {
            *caches = u8::MAX;
        }
        Ok::<_, PyErr>(Some(table))
    })?;
    Ok(table.as_ref())
}

/// Opcode numbers change between minor versions: read them from `opcode`.
pub(crate) fn opcodes(py: Python<'_>) -> PyResult<&'static Opcodes> {
    static CELL: PyOnceLock<Opcodes> = PyOnceLock::new();
    CELL.get_or_try_init(py, || {
        let opmap = py.import("opcode")?.getattr("opmap")?;
        let op = |name: &str| -> PyResult<u8> { opmap.get_item(name)?.extract() };
        Ok(Opcodes {
            load_global: op("LOAD_GLOBAL")?,
            store_global: op("STORE_GLOBAL")?,
            delete_global: op("DELETE_GLOBAL")?,
            extended_arg: op("EXTENDED_ARG")?,
            load_global_shift: u32::from(running(py) >= (3, 11)),
        })
    })
}
