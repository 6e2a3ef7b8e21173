//! The dense function shape of the native writer: one call makes a function
//! with its code object and fills it, from positional tuples the loader
//! reads in Rust, instead of a `CodeType(...)` call, a skeleton, empty cells
//! made one call each and a state of two dicts set attribute by attribute.
//!
//! - `new_function(code_fields, globals, state, identity=None)`:
//!   `code_fields` are the arguments of `types.CodeType(...)` for the
//!   running version, `globals` the dict shared by the functions of one
//!   module (seeded with its identity keys), `state` a `FunctionState`
//!   tuple, or None to leave the function a skeleton whose closure cells
//!   are empty; `identity`, given by the call that first gets the shared
//!   dict (then empty), holds the identity keys' values, which it sets
//!   (see `set_module_identity`);
//! - `new_function(code_fields, None)`: the code object alone, for a code
//!   among another's constants (a nested function, a lambda, a 3.11
//!   comprehension), so that loads reuse it as they do a function's code
//!   (see `loaded_code`);
//! - `fill_function(func, state)`, or `new_function(func, state)` in the
//!   pickles this release writes: fills a skeleton afterwards, for a
//!   function whose state refers back to it (recursion, mutual references):
//!   the pickle memoizes the skeleton before it writes the state.
//!
//! `FunctionState` is, by position (see `item`): name, qualname, defaults, kwdefaults,
//! module, doc, annotations (None for none), the globals the code uses
//! (but the importable modules), the closure's values (None for no
//! closure), the indices of the cells that stay empty, the function's
//! `__dict__` entries (None for none), the names of the submodules the code
//! reaches through a package (imported, None for none), the globals that
//! are importable modules, by global name and module name (imported and
//! set, None for none), and, only when there are any, the names of the
//! globals that are the function itself (set to it once it is made, so a
//! function that is recursive through its own name needs no skeleton).
//! This release writes it compact, `(bits, *items)`: bit `i` set when the
//! item at position `i` follows. Left out are the name, qualname, module
//! and doc that `PyFunction_New` derives alike from the code and globals,
//! and the items that are None or empty: a plain function's state is its
//! globals alone, where the full tuple cost the unpickler thirteen opcodes.
//! Modules travel by name in the state instead of as `subimport` calls: no
//! `find_class` and no call per module.
//!
//! The used globals and the module globals are flat tuples, `(name, value,
//! name, value, ...)`, set straight into the function's globals; pickles of
//! earlier releases have dicts there, which still load. A name that is one
//! of the code's `co_names` is written as its index there (see
//! `GlobalKeys`), as are the names bound to the function itself. A flat tuple costs
//! the unpickler no dict to fill (and hash into) only for `new_function` to
//! copy it.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple};

use super::{cell_of, code, set_cell, subimport};
use crate::cpython;
use crate::function_fields::FunctionFields;
use crate::objects;
use crate::reducers::function::{PACKAGE_FROM_NAME, module_identity};

/// Reads one of a function object's own fields.
type FieldOf = fn(&ffi::PyFunctionObject) -> *mut ffi::PyObject;

/// Items of a `FunctionState` tuple.
pub(crate) const STATE_LEN: usize = 13;
/// Items of a `FunctionState` that ends with the names of the globals that
/// are the function itself.
pub(crate) const STATE_WITH_SELF_NAMES: usize = STATE_LEN + 1;

#[pyfunction]
#[pyo3(name = "_new_function")]
#[pyo3(signature = (code_fields, globals, state = None, identity = None))]
pub(crate) fn new_function<'py>(
    code_fields: &Bound<'py, PyAny>,
    globals: &Bound<'py, PyAny>,
    state: Option<&Bound<'py, PyTuple>>,
    identity: Option<&Bound<'py, PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    // `new_function(skeleton, state)` fills a skeleton: a pickle that has
    // found `new_function` reads it back from its memo for the filling,
    // where naming `fill_function` would cost a second `find_class`.
    // SAFETY: a type check on a live object.
    if unsafe { ffi::PyFunction_Check(code_fields.as_ptr()) } != 0 {
        if identity.is_some() {
            return Err(PyTypeError::new_err(
                "new_function(skeleton, state) takes no fourth argument",
            ));
        }
        return fill_skeleton(code_fields, globals, state);
    }
    let code_fields = code_fields.cast::<PyTuple>().map_err(|_| {
        PyTypeError::new_err("new_function's code_fields must be a tuple (or a skeleton function to fill)")
    })?;
    if globals.is_none() {
        return code_alone(code_fields, state, identity);
    }
    let globals = globals
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("new_function expects a dict of globals"))?;
    let py = globals.py();
    if let Some(identity) = identity {
        set_module_identity(globals, identity)?;
    }
    let state = state.map(FunctionState::read).transpose()?;
    let code::MadeCode { code, free_vars, names } = code::make_code(code_fields)?;
    set_builtins(globals)?;
    // SAFETY: `code` is a code object (made by its constructor); both pointers are
    // borrowed for the call, which returns a new reference or null.
    let func = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyFunction_New(code.as_ptr(), globals.as_ptr()))? };
    if free_vars > 0 {
        let cells = (0..free_vars)
            .map(|_| cell_of(py, None))
            .collect::<PyResult<Vec<_>>>()?;
        set_closure(&func, &PyTuple::new(py, cells)?)?;
    }
    if let Some(state) = state {
        state.apply(&func, names)?;
    }
    Ok(func)
}

/// Makes `globals['__builtins__']` this side's builtins. The functions of
/// a module share their globals, and only the first call finds another
/// value there (none): a lookup costs less than storing it again.
fn set_builtins(globals: &Bound<'_, PyDict>) -> PyResult<()> {
    let py = globals.py();
    let key = intern!(py, "__builtins__");
    let builtins = objects::builtins_dict(py)?;
    // SAFETY: a lookup in a live dict by a live key; the result is borrowed
    // and only compared, or null (absent, or an error set).
    let current = unsafe { ffi::PyDict_GetItemWithError(globals.as_ptr(), key.as_ptr()) };
    if current == builtins.as_ptr() {
        return Ok(());
    }
    // Absent is the common case (a function's own globals, new each load):
    // asking whether an error is set is cheaper than fetching one.
    // SAFETY: attached; only reads the current exception.
    if current.is_null() && !unsafe { ffi::PyErr_Occurred() }.is_null() {
        return Err(PyErr::fetch(py));
    }
    globals.set_item(key, builtins)
}

/// `new_function(code_fields, None)`: the code object, which a code's
/// constants hold.
fn code_alone<'py>(
    code_fields: &Bound<'py, PyTuple>,
    state: Option<&Bound<'py, PyTuple>>,
    identity: Option<&Bound<'py, PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    if state.is_some() || identity.is_some() {
        return Err(PyTypeError::new_err(
            "new_function(code_fields, None) makes a code object alone and takes no state",
        ));
    }
    Ok(code::make_code(code_fields)?.code)
}

#[pyfunction]
#[pyo3(name = "_fill_function")]
pub(crate) fn fill_function<'py>(func: &Bound<'py, PyAny>, state: &Bound<'py, PyTuple>) -> PyResult<()> {
    // SAFETY: a type check on a live object.
    if unsafe { ffi::PyFunction_Check(func.as_ptr()) } == 0 {
        return Err(PyTypeError::new_err(format!(
            "fill_function expects a function, got {}",
            func.get_type().name()?
        )));
    }
    FunctionState::read(state)?.apply(func, None)
}

/// Sets a module's identity keys into the globals `new_function` was
/// given (the writer's stand-in, empty until then): `identity` is
/// `(present, *values)`, where bit `i` of `present` says that the value of
/// the `i`th name of `module_identity` follows, in that order, and
/// `PACKAGE_FROM_NAME` that `__package__` is derived from `__name__` (see
/// `package_of`). The names are the interned ones: the unpickler has no
/// key names to decode and hash.
fn set_module_identity(globals: &Bound<'_, PyDict>, identity: &Bound<'_, PyTuple>) -> PyResult<()> {
    let malformed = || PyValueError::new_err("a module's identity must be (bits of the keys present, *their values)");
    let present = identity
        .get_item(0)
        .ok()
        .filter(|bits| bits.is_exact_instance_of::<PyInt>())
        .and_then(|bits| bits.extract::<u8>().ok())
        .ok_or_else(malformed)?;
    let names = module_identity(globals.py());
    let sent = present & !PACKAGE_FROM_NAME;
    let derived = present & PACKAGE_FROM_NAME != 0;
    if u32::from(sent) >= 1 << names.len()
        || sent.count_ones() as usize != identity.len() - 1
        || derived && (sent & 0b1 != 0 || sent & 0b10 == 0)
    {
        return Err(malformed());
    }
    let package = if derived {
        Some(derived_package(identity, sent)?)
    } else {
        None
    };
    let mut values = identity.iter().skip(1);
    for (position, name) in names.into_iter().enumerate() {
        if position == 0
            && let Some(package) = &package
        {
            globals.set_item(name, package)?;
        } else if sent & 1 << position != 0
            && let Some(value) = values.next()
        {
            globals.set_item(name, value)?;
        }
    }
    Ok(())
}

/// The `__package__` an identity leaves to be derived from its `__name__`
/// (the first value sent, since `__package__` is not).
fn derived_package<'py>(identity: &Bound<'py, PyTuple>, sent: u8) -> PyResult<Bound<'py, PyString>> {
    let name = identity.get_item(1)?;
    let name = name
        .cast_exact::<PyString>()
        .map_err(|_| PyTypeError::new_err("a module's identity derives __package__ from a __name__ that is a str"))?;
    let has_path = sent & 0b100 != 0;
    if has_path {
        return Ok(name.clone());
    }
    // `package_of`'s rule on the str itself: no UTF-8 view of it to make.
    // SAFETY: `name` is an exact str; both calls return a new reference or
    // an error (a -2 index, a null str) with an exception set.
    unsafe {
        let length = ffi::PyUnicode_GET_LENGTH(name.as_ptr());
        let dot = ffi::PyUnicode_FindChar(name.as_ptr(), u32::from('.'), 0, length, -1);
        if dot == -2 {
            return Err(PyErr::fetch(identity.py()));
        }
        let package = ffi::PyUnicode_Substring(name.as_ptr(), 0, dot.max(0));
        Ok(Bound::from_owned_ptr_or_err(identity.py(), package)?.cast_into_unchecked())
    }
}

/// `new_function(skeleton, state)`: `fill_function` under the name the
/// pickle has already found.
fn fill_skeleton<'py>(
    func: &Bound<'py, PyAny>,
    state: &Bound<'py, PyAny>,
    extra: Option<&Bound<'py, PyTuple>>,
) -> PyResult<Bound<'py, PyAny>> {
    if extra.is_some() {
        return Err(PyTypeError::new_err(
            "new_function(skeleton, state) takes no third argument",
        ));
    }
    let state = state
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("a function's state must be a tuple"))?;
    fill_function(func, state)?;
    Ok(func.py().None().into_bound(func.py()))
}

/// Where each item of a `FunctionState` is, in the full tuple.
mod item {
    pub(super) const NAME: usize = 0;
    pub(super) const QUALNAME: usize = 1;
    pub(super) const DEFAULTS: usize = 2;
    pub(super) const KWDEFAULTS: usize = 3;
    pub(super) const MODULE: usize = 4;
    pub(super) const DOC: usize = 5;
    pub(super) const ANNOTATIONS: usize = 6;
    pub(super) const USED_GLOBALS: usize = 7;
    pub(super) const CLOSURE: usize = 8;
    pub(super) const EMPTY_CELLS: usize = 9;
    pub(super) const ATTRS: usize = 10;
    pub(super) const SUBMODULES: usize = 11;
    pub(super) const MODULE_GLOBALS: usize = 12;
    pub(super) const SELF_NAMES: usize = 13;
}

/// A `FunctionState`, full or compact, its items by position (see
/// `item`): None for an item a compact state leaves out.
struct FunctionState<'a, 'py> {
    items: [Option<Borrowed<'a, 'py, PyAny>>; STATE_WITH_SELF_NAMES],
}

impl<'a, 'py> FunctionState<'a, 'py> {
    fn read(state: &'a Bound<'py, PyTuple>) -> PyResult<Self> {
        let mut items = [None; STATE_WITH_SELF_NAMES];
        let first = state.get_borrowed_item(0).ok();
        if let Some(present) = first.filter(|first| first.is_exact_instance_of::<PyInt>()) {
            let present = compact_bits(&present, state.len())?;
            let mut values = state.iter_borrowed().skip(1);
            for (position, item) in items.iter_mut().enumerate() {
                if present & 1 << position != 0 {
                    *item = values.next();
                }
            }
            return Ok(Self { items });
        }
        if state.len() != STATE_LEN && state.len() != STATE_WITH_SELF_NAMES {
            return Err(PyValueError::new_err(format!(
                "a function's state has {STATE_LEN} items ({STATE_WITH_SELF_NAMES} with the names bound to the \
                 function itself), or is compact: (bits of the items present, *those items); this one has {}",
                state.len()
            )));
        }
        for (item, value) in items.iter_mut().zip(state.iter_borrowed()) {
            *item = Some(value);
        }
        Ok(Self { items })
    }

    fn item(&self, index: usize) -> Option<&Borrowed<'a, 'py, PyAny>> {
        self.items[index].as_ref()
    }

    /// An item that is there and not None.
    fn given(&self, index: usize) -> Option<&Borrowed<'a, 'py, PyAny>> {
        self.item(index).filter(|value| !value.is_none())
    }

    /// Sets what differs from what `PyFunction_New` derived from the code
    /// and globals: a plain load sets only the globals it uses. `names`:
    /// the code's `co_names`, when the caller has them at hand.
    fn apply(&self, func: &Bound<'py, PyAny>, names: Option<Bound<'py, PyTuple>>) -> PyResult<()> {
        let py = func.py();
        let fields = FunctionFields::of(func)
            .ok_or_else(|| PyTypeError::new_err("a function's state applies to functions only"))?;
        // What `PyFunction_New` derived from the code and globals, read from
        // the function's own fields: a `getattr` each would cost more than
        // the comparison they feed. A compact state leaves out what the
        // writer knew would be derived.
        let derived: [(_, _, FieldOf); 4] = [
            (intern!(py, "__name__"), item::NAME, |f| f.func_name),
            (intern!(py, "__qualname__"), item::QUALNAME, |f| f.func_qualname),
            (intern!(py, "__module__"), item::MODULE, |f| f.func_module),
            (intern!(py, "__doc__"), item::DOC, |f| f.func_doc),
        ];
        for (name, index, pick) in derived {
            if let Some(value) = self.item(index)
                && !cpython::same_text(&fields.read_or_none(pick), value)?
            {
                func.setattr(name, value)?;
            }
        }
        // None on a new function: set only when there is something.
        let optional = [
            (intern!(py, "__defaults__"), item::DEFAULTS),
            (intern!(py, "__kwdefaults__"), item::KWDEFAULTS),
            (intern!(py, "__annotations__"), item::ANNOTATIONS),
        ];
        for (name, index) in optional {
            if let Some(value) = self.given(index) {
                func.setattr(name, value)?;
            }
        }
        let mut keys = GlobalKeys { func, names };
        if let Some(used) = self.item(item::USED_GLOBALS) {
            set_used_globals(func, used, &mut keys)?;
        }
        if let Some(values) = self.given(item::CLOSURE) {
            fill_cells(func, values, self.item(item::EMPTY_CELLS))?;
        }
        if let Some(attrs) = self.given(item::ATTRS) {
            let own = func.getattr(intern!(py, "__dict__"))?.cast_into::<PyDict>()?;
            own.update(attrs.cast::<PyDict>()?.as_mapping())?;
        }
        if let Some(submodules) = self.given(item::SUBMODULES) {
            for name in submodules.try_iter()? {
                subimport(py, name?.cast::<PyString>()?)?;
            }
        }
        if let Some(modules) = self.given(item::MODULE_GLOBALS) {
            set_module_globals(func, modules, &mut keys)?;
        }
        if let Some(self_names) = self.item(item::SELF_NAMES) {
            set_self_names(func, self_names, &mut keys)?;
        }
        Ok(())
    }
}

/// The bits of a compact state's items, checked against its length: bit
/// `i` says that the item at position `i` follows, in position order.
fn compact_bits(present: &Borrowed<'_, '_, PyAny>, length: usize) -> PyResult<u16> {
    let bits = present
        .extract::<u16>()
        .ok()
        .filter(|bits| u32::from(*bits) < 1 << STATE_WITH_SELF_NAMES);
    match bits {
        Some(bits) if bits.count_ones() as usize == length - 1 => Ok(bits),
        _ => Err(PyValueError::new_err(format!(
            "a function's compact state must be (bits of the items present, *those items), with bits below \
             2**{STATE_WITH_SELF_NAMES} and an item for each bit set: this one has bits {} and {} items",
            present.repr().map(|text| text.to_string()).unwrap_or_default(),
            length - 1
        ))),
    }
}

/// The globals the code uses (but modules): a flat tuple of names (or
/// `GlobalKeys`) and values, or a dict (earlier releases).
fn set_used_globals<'py>(
    func: &Bound<'py, PyAny>,
    used: &Borrowed<'_, 'py, PyAny>,
    keys: &mut GlobalKeys<'_, 'py>,
) -> PyResult<()> {
    let py = func.py();
    let globals = function_globals(func);
    let mut names_builtins = false;
    if let Ok(pairs) = used.cast_exact::<PyTuple>() {
        for (key, value) in flat_pairs(&pairs, "used globals")? {
            let name = keys.name(key)?;
            names_builtins |= is_builtins_name(&name)?;
            globals.set_item(name, value)?;
        }
    } else {
        let used = used
            .cast::<PyDict>()
            .map_err(|_| PyTypeError::new_err("a function's used globals must be a dict or a flat tuple"))?;
        if used.is_empty() {
            return Ok(());
        }
        globals.update(used.as_mapping())?;
        names_builtins = used.contains(intern!(py, "__builtins__"))?;
    }
    // A code that names `__builtins__` ships the writer's: the loading side
    // keeps its own, as `new_function` set it.
    if names_builtins {
        globals.set_item(intern!(py, "__builtins__"), objects::builtins_dict(py)?)?;
    }
    Ok(())
}

/// The globals that are importable modules, imported by name: None, a flat
/// tuple of global names (or `GlobalKeys`) and module names, or a dict
/// (earlier releases).
fn set_module_globals<'py>(
    func: &Bound<'py, PyAny>,
    modules: &Borrowed<'_, 'py, PyAny>,
    keys: &mut GlobalKeys<'_, 'py>,
) -> PyResult<()> {
    if let Ok(pairs) = modules.cast_exact::<PyTuple>() {
        return import_module_globals(func, flat_pairs(&pairs, "module globals")?, keys);
    }
    let modules = modules
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("a function's module globals must be None, a flat tuple or a dict"))?;
    import_module_globals(func, modules.iter(), keys)
}

/// Sets each global name to the module it names, imported.
fn import_module_globals<'py>(
    func: &Bound<'py, PyAny>,
    pairs: impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    keys: &mut GlobalKeys<'_, 'py>,
) -> PyResult<()> {
    let py = func.py();
    let globals = function_globals(func);
    for (key, module_name) in pairs {
        globals.set_item(keys.name(key)?, subimport(py, module_name.cast::<PyString>()?)?)?;
    }
    Ok(())
}

/// How a state names a global: by the name itself, or, where the name is
/// one of the code's `co_names`, by its index there (an int costs the
/// unpickler less than a str, which the code's names no longer share
/// since they travel as a blob; see `name_blob`).
struct GlobalKeys<'a, 'py> {
    func: &'a Bound<'py, PyAny>,
    /// The code's `co_names`, read from the function at the first index.
    names: Option<Bound<'py, PyTuple>>,
}

impl<'py> GlobalKeys<'_, 'py> {
    /// The global's name that `key` stands for.
    fn name(&mut self, key: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if !key.is_exact_instance_of::<PyInt>() {
            return Ok(key);
        }
        let names = match &mut self.names {
            Some(names) => names,
            slot => {
                let py = self.func.py();
                let code = self.func.getattr(intern!(py, "__code__"))?;
                slot.insert(code.getattr(intern!(py, "co_names"))?.cast_into::<PyTuple>()?)
            }
        };
        let out_of_range = || {
            PyValueError::new_err(format!(
                "a function's global is named by index {key} into its code's names, of which there are {}",
                names.len()
            ))
        };
        // SAFETY: `key` is an int; an overflow sets an exception, cleared
        // here for the error below.
        let index = unsafe { ffi::PyLong_AsSsize_t(key.as_ptr()) };
        if index == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
        }
        let index = usize::try_from(index).map_err(|_| out_of_range())?;
        match names.get_borrowed_item(index) {
            Ok(name) => Ok(name.to_owned()),
            Err(_) => Err(out_of_range()),
        }
    }
}

/// Binds each of `names` (or `GlobalKeys`) to the function itself in its
/// globals.
fn set_self_names<'py>(
    func: &Bound<'py, PyAny>,
    names: &Borrowed<'_, 'py, PyAny>,
    keys: &mut GlobalKeys<'_, 'py>,
) -> PyResult<()> {
    let names = names
        .cast_exact::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("the names bound to a function itself must be a tuple"))?;
    let globals = function_globals(func);
    for key in names.iter() {
        globals.set_item(keys.name(key)?, func)?;
    }
    Ok(())
}

/// `(a, b, c, d, ...)` as the pairs `(a, b), (c, d), ...`.
fn flat_pairs<'a, 'py>(
    items: &'a Bound<'py, PyTuple>,
    what: &str,
) -> PyResult<impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)> + 'a> {
    if items.len() % 2 != 0 {
        return Err(PyValueError::new_err(format!(
            "a function's {what} must alternate names and values, got {} items",
            items.len()
        )));
    }
    // SAFETY: both indices are below the length, checked even above.
    Ok((0..items.len() / 2).map(move |pair| unsafe {
        (
            items.get_borrowed_item_unchecked(2 * pair).to_owned(),
            items.get_borrowed_item_unchecked(2 * pair + 1).to_owned(),
        )
    }))
}

/// Whether a used global's name is `__builtins__` (compared only for an
/// exact str of its length, so other names cost a type and length check).
fn is_builtins_name(name: &Bound<'_, PyAny>) -> PyResult<bool> {
    let builtins = intern!(name.py(), "__builtins__");
    if name.is(builtins) {
        return Ok(true);
    }
    match name.cast_exact::<PyString>() {
        // SAFETY: a length read from an exact str.
        Ok(text) if unsafe { ffi::PyUnicode_GET_LENGTH(text.as_ptr()) } == 12 => text.as_any().eq(builtins),
        _ => Ok(false),
    }
}

fn function_globals<'py>(func: &Bound<'py, PyAny>) -> Bound<'py, PyDict> {
    // SAFETY: `func` is a function (made by `new_function` or checked by
    // `fill_function`); its globals are a borrowed dict made strong at once.
    unsafe {
        let globals = ffi::PyFunction_GetGlobals(func.as_ptr());
        Bound::from_borrowed_ptr(func.py(), globals).cast_into_unchecked()
    }
}

/// The function's closure, None when it has none (read from the function,
/// not through `__closure__`'s descriptor).
fn function_closure<'py>(func: &Bound<'py, PyAny>) -> Option<Bound<'py, PyAny>> {
    // SAFETY: `func` is a function (made by `new_function` or checked by
    // `fill_function`); its closure is a borrowed tuple or null, made strong
    // at once.
    unsafe { Bound::from_borrowed_ptr_or_opt(func.py(), ffi::PyFunction_GetClosure(func.as_ptr())) }
}

/// Puts the closure's values into the function's own cells, but those whose
/// index is listed in `empty`, which stay empty.
/// (None: no index, as a compact state leaves out.)
fn fill_cells(
    func: &Bound<'_, PyAny>,
    values: &Borrowed<'_, '_, PyAny>,
    empty: Option<&Borrowed<'_, '_, PyAny>>,
) -> PyResult<()> {
    let values = values
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err("a function's closure values must be a tuple"))?;
    let no_index = PyTuple::empty(func.py());
    let empty = match empty {
        Some(empty) => empty
            .cast::<PyTuple>()
            .map_err(|_| PyTypeError::new_err("a function's empty cells must be a tuple"))?,
        None => no_index.as_borrowed(),
    };
    let cells = function_closure(func);
    let cells = match cells.map(Bound::cast_into::<PyTuple>) {
        Some(Ok(cells)) if cells.len() == values.len() => cells,
        _ => return Err(PyValueError::new_err("closure size does not match the function's code")),
    };
    let empty = empty
        .iter()
        .map(|index| index.extract::<usize>())
        .collect::<PyResult<Vec<_>>>()?;
    for (index, (cell, value)) in cells.iter().zip(values.iter()).enumerate() {
        if !empty.contains(&index) {
            set_cell(&cell, Some(&value))?;
        }
    }
    Ok(())
}

/// `func.__closure__ = cells`, which Python code cannot do (read-only).
fn set_closure(func: &Bound<'_, PyAny>, cells: &Bound<'_, PyTuple>) -> PyResult<()> {
    // SAFETY: `func` is a function just made; `cells` a tuple of cells,
    // borrowed (PyFunction_SetClosure takes its own reference).
    if unsafe { ffi::PyFunction_SetClosure(func.as_ptr(), cells.as_ptr()) } < 0 {
        return Err(PyErr::fetch(func.py()));
    }
    Ok(())
}
