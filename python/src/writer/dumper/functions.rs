//! Functions by value for the native target, written straight from the
//! function object in the dense shape that `reconstruct/functions.rs`
//! loads: no reduce tuple or state dicts are built only to be walked.
//!
//! `new_function(code_fields, globals, state)` is one call when nothing in
//! the state can lead back to the function before it exists (see
//! `cannot_refer_back`); a global that is the function itself does not
//! count, since the state names it and `new_function` binds it once the
//! function is made (a function recursive through its own name). Otherwise
//! `new_function(code_fields, globals, None)` makes a skeleton, the memo
//! keeps it, and `new_function(func, state)` fills it, so that the state
//! may refer to it (mutual recursion, a default or cell holding it); the
//! second call reads `new_function` from the memo (pickles of earlier
//! releases name `fill_function` for it, which still loads).

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyModule, PyString, PyTuple};

use super::Dumper;
use crate::byvalue;
use crate::code_globals::{global_names, imported_submodules};
use crate::function_fields::FunctionFields;
use crate::reconstruct::cell_contents;
use crate::reducers::function::{PACKAGE_FROM_NAME, Parts, module_globals, module_identity, package_of};
use crate::writer::opcodes::*;

/// Containers deeper than this are not searched for a way back.
const LEAF_SEARCH_DEPTH: u8 = 3;
/// Containers longer than this are not searched either.
const LEAF_SEARCH_ITEMS: usize = 64;

/// What a function's state holds, read once, then checked and written (in
/// the order of `FunctionState` in `reconstruct/functions.rs`).
struct FunctionValues<'py> {
    name: Bound<'py, PyAny>,
    qualname: Bound<'py, PyAny>,
    defaults: Bound<'py, PyAny>,
    kwdefaults: Bound<'py, PyAny>,
    module: Bound<'py, PyAny>,
    doc: Bound<'py, PyAny>,
    annotations: Option<Bound<'py, PyDict>>,
    /// The globals the code uses, in first-use order, but those that are
    /// the function itself.
    used_globals: Vec<UsedGlobal<'py>>,
    /// How many of `used_globals` are modules travelling by name (see
    /// `mark_modules_by_name`).
    modules_by_name: usize,
    /// The names of the globals that are the function itself, in
    /// first-use order.
    self_names: Vec<GlobalKey<'py>>,
    /// Each cell's content, None for an empty cell; None for no closure.
    closure: Option<Vec<Option<Bound<'py, PyAny>>>>,
    attrs: Option<Bound<'py, PyDict>>,
}

impl<'py> FunctionValues<'py> {
    fn read(func: &Bound<'py, PyAny>, parts: &Parts<'py>) -> PyResult<Self> {
        let py = func.py();
        let names = global_names(&parts.code)?;
        let code_names = parts.code.getattr(intern!(py, "co_names"))?.cast_into::<PyTuple>()?;
        let mut used_globals = Vec::with_capacity(names.len());
        let mut self_names = Vec::new();
        for name in names.iter() {
            if let Some(value) = parts.globals.get_item(&name)? {
                let index = code_names.iter_borrowed().position(|code_name| code_name.is(&name));
                let key = GlobalKey { name, index };
                if value.is(func) {
                    self_names.push(key);
                } else {
                    used_globals.push(UsedGlobal {
                        key,
                        value,
                        by_name: false,
                    });
                }
            }
        }
        let closure = match &parts.closure {
            Some(cells) => Some(
                cells
                    .iter()
                    .map(|cell| cell_contents(&cell))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            None => None,
        };
        // The fields are read where the attributes would only return them.
        let fields = FunctionFields::of(func)
            .ok_or_else(|| PyTypeError::new_err("save_function was given something other than a function"))?;
        let annotations = match fields.read(|f| f.func_annotations) {
            // Not made yet: the attribute would make an empty dict.
            None => None,
            Some(annotations) if annotations.is_exact_instance_of::<PyDict>() => Some(annotations),
            // Another form, which the attribute turns into a dict.
            Some(_) => Some(func.getattr(intern!(py, "__annotations__"))?),
        };
        let annotations = annotations
            .and_then(|annotations| annotations.cast_into::<PyDict>().ok())
            .filter(|annotations| !annotations.is_empty());
        let attrs = fields
            .read(|f| f.func_dict)
            .and_then(|attrs| attrs.cast_into::<PyDict>().ok())
            .filter(|attrs| !attrs.is_empty());
        let none = || py.None().into_bound(py);
        Ok(Self {
            name: fields.read(|f| f.func_name).unwrap_or_else(none),
            qualname: fields.read(|f| f.func_qualname).unwrap_or_else(none),
            defaults: fields.read(|f| f.func_defaults).unwrap_or_else(none),
            kwdefaults: fields.read(|f| f.func_kwdefaults).unwrap_or_else(none),
            module: fields.read(|f| f.func_module).unwrap_or_else(none),
            doc: fields.read(|f| f.func_doc).unwrap_or_else(none),
            annotations,
            used_globals,
            modules_by_name: 0,
            self_names,
            closure,
            attrs,
        })
    }

    /// The dicts of the state whose values it refers to.
    fn dicts(&self) -> impl Iterator<Item = &Bound<'py, PyDict>> {
        [
            self.kwdefaults.cast::<PyDict>().ok(),
            self.annotations.as_ref(),
            self.attrs.as_ref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A global the code uses.
struct UsedGlobal<'py> {
    key: GlobalKey<'py>,
    value: Bound<'py, PyAny>,
    /// A module that the state names rather than writes.
    by_name: bool,
}

/// A global's name, and its index in the code's `co_names` where it is
/// one: the state names the global by the index then (see `GlobalKeys` in
/// `reconstruct/functions.rs`).
struct GlobalKey<'py> {
    name: Bound<'py, PyAny>,
    index: Option<usize>,
}

/// The stand-in for a function's module globals, as its call gets it.
enum StandIn<'py> {
    /// Written already in this pickle, at this memo index.
    Written(u32),
    /// Written by this call: the pickler's shared dict (None: made for this
    /// dump only), and its identity keys' values by position.
    New {
        dict: Option<Bound<'py, PyDict>>,
        identity: Vec<(u8, Bound<'py, PyAny>)>,
    },
}

impl<'py> Dumper<'_, 'py> {
    /// Writes a function that travels by value (the caller decided).
    pub(super) fn save_function(&mut self, func: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let names = self.state.reconstructors();
        let parts = Parts::of(func)?;
        let mut values = FunctionValues::read(func, &parts)?;
        self.mark_modules_by_name(&mut values)?;
        let one_call = self.state_cannot_refer_back(&values)?;
        self.names_by_text += 1;
        self.by_value_parts += 1;
        let result = (|| {
            self.save(names.new_function(py, "a function")?)?;
            let (stand_in, module_name) = self.stand_in(&parts)?;
            let identity = match &stand_in {
                StandIn::New { identity, .. } if !identity.is_empty() => Some(identity),
                _ => None,
            };
            if identity.is_some() {
                self.out.write(&[MARK])?;
            }
            self.save_code_fields(&parts.code)?;
            self.save_module_globals(&parts, &stand_in)?;
            if one_call {
                self.write_function_state(&parts, &values, module_name.as_ref())?;
            } else {
                self.out.write(&[NONE])?;
            }
            match identity {
                Some(identity) => {
                    self.write_identity(identity)?;
                    self.out.write(&[TUPLE, REDUCE])?;
                }
                None => self.out.write(&[TUPLE3, REDUCE])?,
            }
            if self.memoize_made(func)? {
                return Ok(());
            }
            if !one_call {
                // `new_function` again, now a memo read: it fills the
                // skeleton without a second name to find.
                self.save(names.new_function(py, "a function")?)?;
                self.save(func)?;
                self.write_function_state(&parts, &values, module_name.as_ref())?;
                self.out.write(&[TUPLE2, REDUCE, POP])?;
            }
            Ok(())
        })();
        self.names_by_text -= 1;
        self.by_value_parts -= 1;
        result
    }

    /// The dict that stands for the function's module globals (see
    /// `module_globals`), shared by the functions of one module: a memo
    /// read, or written empty, its keys travelling beside it in the call
    /// (see `stand_in`). When the pickler's state lives only for
    /// this dump, nothing after the dump can refer to the stand-in, so it
    /// gets a memo index of its own and no dict is made (making and filling
    /// it cost ~1.8k a dump); a pickler's is memoized as itself, for its
    /// later dumps.
    fn save_module_globals(&mut self, parts: &Parts<'py>, stand_in: &StandIn<'py>) -> PyResult<()> {
        match stand_in {
            StandIn::Written(index) => self.write_get(*index)?,
            StandIn::New { dict, .. } => {
                self.out.write(&[EMPTY_DICT])?;
                match dict {
                    Some(dict) => {
                        self.memoize(dict.as_any())?;
                    }
                    None => {
                        let index = self.write_fresh_put()?;
                        if let Some(written) = &mut self.globals_written {
                            written.insert(
                                parts.globals.as_ptr() as usize,
                                (parts.globals.clone().into_any(), index),
                            );
                        }
                    }
                }
            }
        }
        self.out.opcode_boundary()
    }

    /// Where this function's stand-in for its module globals comes from,
    /// and, when this call is the one that writes it, the keys that make
    /// relative imports work in the copy (those of `module_identity` the
    /// module has, with their positions there): `new_function` sets them,
    /// as a fourth argument, into the empty stand-in (see
    /// `reconstruct/functions.rs`). The unpickler then decodes, hashes and
    /// frees no key names, and fills no dict by SETITEMS (~1.2k of a
    /// lambda's load). No function can get the stand-in before that call
    /// runs: the call's state holds no function that is not made already
    /// (see `cannot_refer_back`), and a skeleton's state comes after it.
    /// Also the stand-in's `__name__` (its identity's, from the same
    /// source), which `PyFunction_New` makes the loaded function's
    /// `__module__`.
    fn stand_in(&mut self, parts: &Parts<'py>) -> PyResult<(StandIn<'py>, Option<Bound<'py, PyAny>>)> {
        let name_key = module_identity(self.py)[1];
        let (dict, source) = match &self.globals_written {
            Some(written) => {
                if let Some((_, index)) = written.get(&(parts.globals.as_ptr() as usize)) {
                    return Ok((StandIn::Written(*index), parts.globals.get_item(name_key)?));
                }
                (None, parts.globals.clone())
            }
            None => {
                let dict = module_globals(self.state, parts)?;
                if let Some(index) = self.memo.get(dict.as_any()) {
                    return Ok((StandIn::Written(index), dict.get_item(name_key)?));
                }
                (Some(dict.clone()), dict)
            }
        };
        let mut identity = Vec::with_capacity(4);
        for (position, key) in (0u8..).zip(module_identity(self.py)) {
            if let Some(value) = source.get_item(key)? {
                identity.push((position, value));
            }
        }
        let name = source.get_item(name_key)?;
        Ok((StandIn::New { dict, identity }, name))
    }

    /// `(present, *values)`: `present` has bit `i` set when the value of
    /// the `i`th name of `module_identity` follows, in that order; a
    /// `__package__` that the import system's rule derives from `__name__`
    /// is not sent, and `PACKAGE_FROM_NAME` says so (one str less to
    /// decode and memoize on load).
    fn write_identity(&mut self, identity: &[(u8, Bound<'py, PyAny>)]) -> PyResult<()> {
        let mut present = identity.iter().fold(0u8, |bits, (position, _)| bits | 1 << position);
        let derived = package_from_name(identity)?;
        if derived {
            present = present & !1 | PACKAGE_FROM_NAME;
        }
        // Nested as the dict's items would have been, for the recursion checks.
        self.enter()?;
        let written = (|| {
            self.out.write(&[MARK, BININT1, present])?;
            for (position, value) in identity {
                if !(derived && *position == 0) {
                    self.save(value)?;
                }
            }
            self.out.write(&[TUPLE])
        })();
        self.leave();
        written
    }

    /// The compact `FunctionState` tuple (see `reconstruct/functions.rs`),
    /// not memoized: nothing else refers to it. `module_name`: the
    /// `__name__` the stand-in for the module globals has on load.
    fn write_function_state(
        &mut self,
        parts: &Parts<'py>,
        values: &FunctionValues<'py>,
        module_name: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
        let derived = Derived::of(&parts.code)?;
        let dependencies = values.used_globals.iter().map(|global| global.value.clone());
        let closure_values = values.closure.iter().flatten().flatten().cloned();
        let submodules = imported_submodules(&parts.code, dependencies.chain(closure_values))?;
        let empty_cells: Vec<usize> = match &values.closure {
            Some(contents) => (0..contents.len()).filter(|&index| contents[index].is_none()).collect(),
            None => Vec::new(),
        };
        let present = [
            !is_text(&values.name, derived.name.as_ref())?,
            !is_text(&values.qualname, derived.qualname.as_ref())?,
            !values.defaults.is_none(),
            !values.kwdefaults.is_none(),
            !is_text(&values.module, module_name)?,
            !is_doc(&values.doc, derived.doc.as_ref())?,
            values.annotations.is_some(),
            values.used_globals.len() > values.modules_by_name,
            values.closure.is_some(),
            !empty_cells.is_empty(),
            values.attrs.is_some(),
            !submodules.is_empty(),
            values.modules_by_name > 0,
            !values.self_names.is_empty(),
        ];
        let bits = present
            .iter()
            .enumerate()
            .fold(0u16, |bits, (position, &given)| bits | u16::from(given) << position);
        self.out.write(&[MARK])?;
        self.save(bits.into_pyobject(self.py)?.as_any())?;
        let [
            name,
            qualname,
            defaults,
            kwdefaults,
            module,
            doc,
            annotations,
            used,
            closure,
            _,
            attrs,
            _,
            modules,
            own,
        ] = present;
        if name {
            self.save(&values.name)?;
        }
        if qualname {
            self.save(&values.qualname)?;
        }
        if defaults {
            self.save_stable_tuple(&values.defaults)?;
        }
        if kwdefaults {
            self.save_stable_dict(&values.kwdefaults)?;
        }
        if module {
            self.save(&values.module)?;
        }
        if doc {
            self.save(&values.doc)?;
        }
        if let Some(annotations) = values.annotations.as_ref().filter(|_| annotations) {
            self.save(annotations.as_any())?;
        }
        if used {
            self.write_globals_by_value(values)?;
        }
        if let Some(contents) = values.closure.as_ref().filter(|_| closure) {
            self.out.write(&[MARK])?;
            for content in contents {
                match content {
                    Some(value) => {
                        let value = self.stable(value)?;
                        self.save(&value)?;
                    }
                    None => self.out.write(&[NONE])?,
                }
            }
            self.out.write(&[TUPLE])?;
        }
        if !empty_cells.is_empty() {
            self.save(PyTuple::new(self.py, empty_cells)?.as_any())?;
        }
        if let Some(attrs) = values.attrs.as_ref().filter(|_| attrs) {
            self.write_pairs(attrs.iter())?;
        }
        if !submodules.is_empty() {
            self.out.write(&[MARK])?;
            for submodule in &submodules {
                self.save(&module_name_of(submodule)?)?;
            }
            self.out.write(&[TUPLE])?;
        }
        if modules {
            self.write_modules_by_name(values)?;
        }
        if own {
            self.write_self_names(&values.self_names)?;
        }
        self.out.write(&[TUPLE])
    }

    /// The used globals but the modules that travel by name, as a flat
    /// tuple `(name, value, ...)`, not memoized: a copy nothing else refers
    /// to.
    fn write_globals_by_value(&mut self, values: &FunctionValues<'py>) -> PyResult<()> {
        let items = 2 * (values.used_globals.len() - values.modules_by_name);
        self.open_tuple(items)?;
        for global in values.used_globals.iter().filter(|global| !global.by_name) {
            self.save_global_key(&global.key)?;
            let value = self.stable(&global.value)?;
            self.save(&value)?;
        }
        self.close_tuple(items)
    }

    /// The used globals that are modules travelling by name, as a flat
    /// tuple `(global name, module name, ...)`; None for none.
    fn write_modules_by_name(&mut self, values: &FunctionValues<'py>) -> PyResult<()> {
        let items = 2 * values.modules_by_name;
        if items == 0 {
            return self.out.write(&[NONE]);
        }
        self.open_tuple(items)?;
        for global in values.used_globals.iter().filter(|global| global.by_name) {
            self.save_global_key(&global.key)?;
            self.save(&module_name_of(&global.value)?)?;
        }
        self.close_tuple(items)
    }

    /// A used global's key in the state: its index among the code's names,
    /// else its name.
    fn save_global_key(&mut self, key: &GlobalKey<'py>) -> PyResult<()> {
        match key.index {
            Some(index) => self.save(index.into_pyobject(self.py)?.as_any()),
            None => self.save(&key.name),
        }
    }

    /// The names (or `co_names` indices) of the globals that are the
    /// function itself, as a tuple.
    fn write_self_names(&mut self, keys: &[GlobalKey<'py>]) -> PyResult<()> {
        self.open_tuple(keys.len())?;
        for key in keys {
            self.save_global_key(key)?;
        }
        self.close_tuple(keys.len())
    }

    /// Starts a tuple of `items` items: a MARK only for more than three,
    /// since TUPLE1 to TUPLE3 take theirs from the stack.
    fn open_tuple(&mut self, items: usize) -> PyResult<()> {
        if items > 3 { self.out.write(&[MARK]) } else { Ok(()) }
    }

    /// Ends a tuple that `open_tuple(items)` started and `items` saves filled.
    fn close_tuple(&mut self, items: usize) -> PyResult<()> {
        let opcode = match items {
            0 => EMPTY_TUPLE,
            1 => TUPLE1,
            2 => TUPLE2,
            3 => TUPLE3,
            _ => TUPLE,
        };
        self.out.write(&[opcode])
    }

    /// Marks the used globals that are modules the state names rather than
    /// writes, once for the writers of the state to read.
    fn mark_modules_by_name(&mut self, values: &mut FunctionValues<'py>) -> PyResult<()> {
        for global in &mut values.used_globals {
            global.by_name = self.is_module_by_name(&global.value)?;
            values.modules_by_name += usize::from(global.by_name);
        }
        Ok(())
    }

    /// A module that the state names rather than writes (decided once per
    /// dump, so a later function of the same dump asks a map).
    fn is_module_by_name(&mut self, value: &Bound<'py, PyAny>) -> PyResult<bool> {
        // SAFETY: a type check on a live object.
        Ok(unsafe { ffi::PyModule_CheckExact(value.as_ptr()) } != 0 && self.module_by_reference(value)?)
    }

    /// A dict made of `pairs`, values written as state writes them; not
    /// memoized, since it is a copy nothing else refers to. An empty one is
    /// EMPTY_DICT alone: a MARK and an empty SETITEMS cost the loader two
    /// more ops for nothing.
    fn write_pairs(&mut self, pairs: impl Iterator<Item = (Bound<'py, PyAny>, Bound<'py, PyAny>)>) -> PyResult<()> {
        let mut pairs = pairs.peekable();
        if pairs.peek().is_none() {
            return self.out.write(&[EMPTY_DICT]);
        }
        self.out.write(&[EMPTY_DICT, MARK])?;
        for (key, value) in pairs {
            self.save(&key)?;
            let value = self.stable(&value)?;
            self.save(&value)?;
        }
        self.out.write(&[SETITEMS])
    }

    /// Defaults: a tuple whose sets of strings are written sorted.
    fn save_stable_tuple(&mut self, value: &Bound<'py, PyAny>) -> PyResult<()> {
        let Ok(items) = value.cast::<PyTuple>() else {
            return self.save(value);
        };
        let stable = items
            .iter()
            .map(|item| self.stable(&item))
            .collect::<PyResult<Vec<_>>>()?;
        if stable.iter().zip(items.iter()).all(|(new, old)| new.is(&old)) {
            return self.save(value);
        }
        self.save(PyTuple::new(self.py, stable)?.as_any())
    }

    fn save_stable_dict(&mut self, value: &Bound<'py, PyAny>) -> PyResult<()> {
        match value.cast::<PyDict>() {
            Ok(dict) => self.write_pairs(dict.iter()),
            Err(_) => self.save(value),
        }
    }

    /// `value` as function state writes it: sets of strings sorted (the
    /// pickler's stand-in), anything else as it is.
    pub(super) fn stable(&self, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: type checks on a live object.
        let is_set = unsafe { ffi::PyAnySet_CheckExact(value.as_ptr()) } != 0;
        if is_set {
            self.state.stable(value)
        } else {
            Ok(value.clone())
        }
    }

    /// Whether no value the state refers to (but the names) can lead back
    /// to the function, asked in the state's order without collecting them.
    fn state_cannot_refer_back(&mut self, values: &FunctionValues<'py>) -> PyResult<bool> {
        for value in [&values.module, &values.doc, &values.defaults] {
            if !self.cannot_refer_back(value, 0)? {
                return Ok(false);
            }
        }
        for dict in values.dicts() {
            for value in dict.values().iter() {
                if !self.cannot_refer_back(&value, 0)? {
                    return Ok(false);
                }
            }
        }
        // The globals that are the function itself are not among them: the
        // state names them, and `new_function` binds them when it has made
        // the function. Modules named by the state cannot lead back either.
        for global in values.used_globals.iter().filter(|global| !global.by_name) {
            if !self.cannot_refer_back(&global.value, 0)? {
                return Ok(false);
            }
        }
        for value in values.closure.iter().flatten().flatten() {
            if !self.cannot_refer_back(value, 0)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// True when writing `value` cannot come back to an object that is
    /// being written: it is in the memo already, or it is made only of
    /// atoms, modules, and classes and functions written by reference.
    fn cannot_refer_back(&mut self, value: &Bound<'py, PyAny>, depth: u8) -> PyResult<bool> {
        let ptr = value.as_ptr();
        // SAFETY: type checks on a live object, comparing static type addresses.
        unsafe {
            let kind = ffi::Py_TYPE(ptr);
            if ptr == ffi::Py_None()
                || kind == &raw mut ffi::PyBool_Type
                || kind == &raw mut ffi::PyLong_Type
                || kind == &raw mut ffi::PyFloat_Type
                || kind == &raw mut ffi::PyUnicode_Type
                || kind == &raw mut ffi::PyBytes_Type
                || kind == &raw mut ffi::PyComplex_Type
            {
                return Ok(true);
            }
            if self.memo.get(value).is_some() {
                return Ok(true);
            }
            if kind == &raw mut ffi::PyTuple_Type || kind == &raw mut ffi::PyFrozenSet_Type {
                if depth >= LEAF_SEARCH_DEPTH || value.len()? > LEAF_SEARCH_ITEMS {
                    return Ok(false);
                }
                for item in value.try_iter()? {
                    if !self.cannot_refer_back(&item?, depth + 1)? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            if ffi::PyModule_CheckExact(ptr) != 0 {
                return self.module_by_reference(value);
            }
            if ffi::PyType_Check(ptr) != 0 {
                let heap = ffi::PyType_GetFlags(ptr.cast()) & ffi::Py_TPFLAGS_HEAPTYPE != 0;
                return if heap { byvalue::by_reference(value) } else { Ok(true) };
            }
            if kind == &raw mut ffi::PyFunction_Type {
                return self.function_by_reference(value);
            }
            if kind == &raw mut ffi::PyCFunction_Type {
                let owner = ffi::PyCFunction_GetSelf(ptr);
                return Ok(owner.is_null() || ffi::PyModule_CheckExact(owner) != 0);
            }
        }
        Ok(false)
    }
}

/// What `PyFunction_New` gives a function made from `code` on this
/// Python, where a compact state may leave the item out (None where the
/// writer does not predict it).
struct Derived<'py> {
    name: Option<Bound<'py, PyAny>>,
    qualname: Option<Bound<'py, PyAny>>,
    /// The doc, or None for a doc of None; not predicted (always sent) on
    /// versions this rule is not known to hold for.
    doc: Option<Option<Bound<'py, PyAny>>>,
}

impl<'py> Derived<'py> {
    fn of(code: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = code.py();
        // Read from the code's cached `CodeType(...)` arguments: three
        // attribute lookups cost more, on every dump of a function.
        static POSITIONS: std::sync::OnceLock<[Option<usize>; 3]> = std::sync::OnceLock::new();
        let positions = POSITIONS.get_or_init(|| {
            let arguments = crate::version::code_args(py);
            ["co_name", "co_qualname", "co_consts"].map(|name| arguments.iter().position(|field| *field == name))
        });
        let fields = crate::reducers::code::code_fields(code)?;
        let field = |which: usize| positions[which].and_then(|position| fields.get_item(position).ok());
        let version = crate::version::running(py);
        // Before 3.11 a code has no qualname; a function's is its name.
        let qualname = if version >= (3, 11) { field(1) } else { None };
        // The first constant when it is a str, else None (3.10 to 3.12;
        // later versions ask the code's flags).
        let doc = match (version < (3, 13), field(2)) {
            (true, Some(consts)) => {
                let first = consts.cast_into::<PyTuple>()?.get_item(0).ok();
                Some(first.filter(|first| first.is_instance_of::<PyString>()))
            }
            _ => None,
        };
        Ok(Self {
            name: field(0),
            qualname,
            doc,
        })
    }
}

/// Whether `value` is `derived`, as the same object or an equal exact
/// str: what a load derives needs no sending then.
fn is_text(value: &Bound<'_, PyAny>, derived: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    let Some(derived) = derived else {
        return Ok(false);
    };
    crate::cpython::same_text(value, derived)
}

/// Whether a function's doc is the one `derived` predicts.
fn is_doc(doc: &Bound<'_, PyAny>, derived: Option<&Option<Bound<'_, PyAny>>>) -> PyResult<bool> {
    match derived {
        None => Ok(false),
        Some(None) => Ok(doc.is_none()),
        Some(Some(first)) => is_text(doc, Some(first)),
    }
}

/// Whether the identity's `__package__` (position 0) is the one
/// `package_of` derives from its `__name__` (position 1), both exact strs.
fn package_from_name(identity: &[(u8, Bound<'_, PyAny>)]) -> PyResult<bool> {
    let text = |position: u8| {
        identity
            .iter()
            .find(|(at, _)| *at == position)
            .and_then(|(_, value)| value.cast_exact::<PyString>().ok())
    };
    let (Some(package), Some(name)) = (text(0), text(1)) else {
        return Ok(false);
    };
    let has_path = identity.iter().any(|(position, _)| *position == 2);
    Ok(package.to_str()? == package_of(name.to_str()?, has_path))
}

/// A module's `__name__`. A plain module's is in its dict (neither
/// `ModuleType` nor `object` defines the attribute), read there without
/// the attribute machinery; anything else, or a dict without it, asks
/// `getattr`, which raises as before.
fn module_name_of<'py>(module: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let key = intern!(module.py(), "__name__");
    if let Ok(plain) = module.cast_exact::<PyModule>()
        && let Some(name) = plain.dict().get_item(key)?
    {
        return Ok(name);
    }
    module.getattr(key)
}
