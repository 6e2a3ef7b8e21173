//! Walks an object graph and writes its pickle, making the choices the C
//! pickler makes, in its order: exact builtin types first, the memo, then
//! our reducers (functions, classes, the table's kinds), `copyreg`'s
//! dispatch table, globals, and `__reduce_ex__` for the rest. Its output
//! loads with any unpickler and is, for plain data, the C pickler's bytes.
//!
//! Two differences by design: the reconstructors' names are checked once
//! per process instead of imported per dump (see `globals.rs`), and names
//! are memoized by text (see `memo.rs`).

use pyo3::exceptions::{PyBufferError, PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use super::FastPathDeclined;
use super::globals::{self, GlobalName};
use super::memo::Memo;
use super::opcodes::*;
use super::output::Output;
use crate::objects;
use crate::pickler::PicklerState;
use crate::reducers::{self, class, function};

unsafe extern "C" {
    // Exported by CPython since 3.8; not declared by pyo3.
    fn PyPickleBuffer_GetBuffer(obj: *mut ffi::PyObject) -> *const ffi::Py_buffer;
}

/// Nesting deeper than this is left to the C pickler, whose frames on the
/// native stack are smaller than ours: measured, 1,200 levels of objects
/// reduced through `__reduce_ex__` take under 2 MiB of stack. Python's
/// default recursion limit (1,000) stops both writers before this.
pub(crate) const MAX_DEPTH: usize = 1200;

pub(crate) struct Dumper<'a, 'py> {
    py: Python<'py>,
    proto: u8,
    pub(crate) out: Output<'py>,
    memo: Memo<'py>,
    state: &'a PicklerState,
    buffer_callback: Option<Bound<'py, PyAny>>,
    /// Above zero while writing a function's, class's or code object's
    /// parts: strings there are memoized by text.
    names_by_text: u32,
    depth: usize,
}

impl<'a, 'py> Dumper<'a, 'py> {
    pub(crate) fn new(
        py: Python<'py>,
        proto: u8,
        state: &'a PicklerState,
        buffer_callback: Option<Bound<'py, PyAny>>,
        out: Output<'py>,
    ) -> Self {
        Self {
            py,
            proto,
            out,
            memo: Memo::new(),
            state,
            buffer_callback,
            names_by_text: 0,
            depth: 0,
        }
    }

    /// The whole pickle of `obj`: protocol header, the object, STOP.
    pub(crate) fn dump(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        self.out.write(&[PROTO, self.proto])?;
        if self.proto >= 4 {
            self.out.start_framing();
        }
        self.save(obj)?;
        self.out.write(&[STOP])?;
        self.out.commit_frame();
        Ok(())
    }

    /// Writes `obj`; a full frame is closed after each object, as the C
    /// pickler closes it.
    fn save(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        self.save_object(obj)?;
        self.out.opcode_boundary()
    }

    fn save_object(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let ptr = obj.as_ptr();
        // SAFETY: reading the type of a live object and comparing addresses
        // of the interpreter's static type objects.
        let kind = unsafe { ffi::Py_TYPE(ptr) };
        unsafe {
            if ptr == ffi::Py_None() {
                return self.out.write(&[NONE]);
            }
            if kind == &raw mut ffi::PyBool_Type {
                return self
                    .out
                    .write(&[if ptr == ffi::Py_True() { NEWTRUE } else { NEWFALSE }]);
            }
            if kind == &raw mut ffi::PyLong_Type {
                return self.save_int(obj);
            }
            if kind == &raw mut ffi::PyFloat_Type {
                let value = ffi::PyFloat_AsDouble(ptr);
                let mut op = [BINFLOAT; 9];
                op[1..].copy_from_slice(&value.to_be_bytes());
                return self.out.write(&op);
            }
        }
        if let Some(index) = self.memo.get(obj) {
            return self.write_get(index);
        }
        if kind == &raw mut ffi::PyUnicode_Type {
            return self.save_str(obj, self.names_by_text > 0);
        }
        if kind == &raw mut ffi::PyBytes_Type {
            return self.save_bytes(obj);
        }
        self.enter()?;
        let result = self.save_compound(obj, kind);
        self.leave();
        result
    }

    fn enter(&mut self) -> PyResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err(FastPathDeclined::new_err("nesting too deep for the native writer"));
        }
        // SAFETY: attached; a non-zero result has set RecursionError.
        if unsafe { ffi::Py_EnterRecursiveCall(c" while pickling an object".as_ptr()) } != 0 {
            return Err(PyErr::fetch(self.py));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
        // SAFETY: paired with the successful Py_EnterRecursiveCall in `enter`.
        unsafe { ffi::Py_LeaveRecursiveCall() };
    }

    fn save_compound(&mut self, obj: &Bound<'py, PyAny>, kind: *mut ffi::PyTypeObject) -> PyResult<()> {
        // SAFETY: comparing type addresses; each cast matches the exact type checked.
        unsafe {
            if kind == &raw mut ffi::PyDict_Type {
                return self.save_dict(obj.cast_unchecked::<PyDict>());
            }
            if kind == &raw mut ffi::PySet_Type {
                return self.save_set(obj);
            }
            if kind == &raw mut ffi::PyFrozenSet_Type {
                return self.save_frozenset(obj);
            }
            if kind == &raw mut ffi::PyList_Type {
                return self.save_list(obj.cast_unchecked::<PyList>());
            }
            if kind == &raw mut ffi::PyTuple_Type {
                return self.save_tuple(obj.cast_unchecked::<PyTuple>());
            }
            if kind == &raw mut ffi::PyByteArray_Type {
                return self.save_bytearray(obj.cast_unchecked::<PyByteArray>());
            }
        }
        if kind.cast() == objects::pickle_buffer_type(self.py)?.as_ptr() {
            return self.save_pickle_buffer(obj);
        }
        self.save_reduced(obj, kind)
    }

    // ---- reductions ------------------------------------------------------

    /// Anything without an opcode of its own: our reducers, then `copyreg`'s
    /// table, then a global for classes and functions, then `__reduce_ex__`.
    fn save_reduced(&mut self, obj: &Bound<'py, PyAny>, kind: *mut ffi::PyTypeObject) -> PyResult<()> {
        let py = self.py;
        // SAFETY: type checks on a live object.
        let (is_function, is_class, is_code) = unsafe {
            (
                kind == &raw mut ffi::PyFunction_Type,
                ffi::PyType_Check(obj.as_ptr()) != 0,
                kind == &raw mut ffi::PyCode_Type,
            )
        };
        // SAFETY: a type check on a live object.
        let is_builtin = unsafe { ffi::PyCFunction_Check(obj.as_ptr()) } != 0;
        if (is_function || is_builtin)
            && let Some(global) = globals::trusted(obj)
        {
            // A reconstructor: its name was checked on first use.
            return self.write_global(obj, global);
        }
        let ours = if is_function {
            function::reduce(self.state, obj)?
        } else if is_class {
            class::reduce(self.state, obj)?
        } else {
            match reducers::registered(py)?.get_item(obj.get_type())? {
                Some(reducer) => reducer.call1((obj,))?,
                None => py.NotImplemented().into_bound(py),
            }
        };
        let reduced = if !ours.is(py.NotImplemented()) {
            ours
        } else if is_function || kind == &raw mut ffi::PyType_Type {
            return self.save_global(obj, None);
        } else {
            let copyreg_table = objects::copyreg_dispatch_table(py)?.cast::<PyDict>()?;
            match copyreg_table.get_item(obj.get_type())? {
                Some(reducer) => reducer.call1((obj,))?,
                None if is_class => return self.save_global(obj, None),
                None => self.reduce_ex(obj)?,
            }
        };
        if let Ok(name) = reduced.cast::<PyString>() {
            return self.save_global(obj, Some(name));
        }
        let Ok(reduced) = reduced.cast::<PyTuple>() else {
            return Err(self.error("__reduce__ must return a string or tuple".into()));
        };
        let by_value = is_function || is_class || is_code;
        self.names_by_text += u32::from(by_value);
        let result = self.save_reduce(reduced, Some(obj));
        self.names_by_text -= u32::from(by_value);
        result
    }

    fn reduce_ex(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        match crate::byvalue::optional_attr(obj, intern!(py, "__reduce_ex__"))? {
            Some(method) => method.call1((self.proto,)),
            None => Err(self.error(format!(
                "can't pickle '{}' object: {}",
                obj.get_type().name()?,
                obj.repr()?
            ))),
        }
    }

    /// A reduce tuple `(callable, args[, state[, listitems[, dictitems[,
    /// state_setter]]]])`; `obj` is memoized once made (None: not at all).
    fn save_reduce(&mut self, reduced: &Bound<'py, PyTuple>, obj: Option<&Bound<'py, PyAny>>) -> PyResult<()> {
        let py = self.py;
        let size = reduced.len();
        if !(2..=6).contains(&size) {
            return Err(self.error("tuple returned by __reduce__ must contain 2 through 6 elements".into()));
        }
        let part = |index: usize| -> PyResult<Option<Bound<'py, PyAny>>> {
            if index >= size {
                return Ok(None);
            }
            let item = reduced.get_item(index)?;
            Ok((!item.is_none()).then_some(item))
        };
        let callable = reduced.get_item(0)?;
        let args = reduced.get_item(1)?;
        let (state, list_items, dict_items, state_setter) = (part(2)?, part(3)?, part(4)?, part(5)?);
        if !callable.is_callable() {
            return Err(self.error("first item of the tuple returned by __reduce__ must be callable".into()));
        }
        let Ok(args) = args.cast_into::<PyTuple>() else {
            return Err(self.error("second item of the tuple returned by __reduce__ must be a tuple".into()));
        };
        for (item, position) in [(&list_items, "fourth"), (&dict_items, "fifth")] {
            // SAFETY: PyIter_Check only reads the type's slots.
            if let Some(item) = item
                && unsafe { ffi::PyIter_Check(item.as_ptr()) } == 0
            {
                return Err(self.error(format!(
                    "{position} element of the tuple returned by __reduce__ must be an iterator, not {}",
                    item.get_type().name()?
                )));
            }
        }
        if let Some(setter) = &state_setter
            && !setter.is_callable()
        {
            return Err(self.error(format!(
                "sixth element of the tuple returned by __reduce__ must be a function, not {}",
                setter.get_type().name()?
            )));
        }
        let name = crate::byvalue::optional_attr(&callable, intern!(py, "__name__"))?;
        let name = name
            .as_ref()
            .and_then(|n| n.cast::<PyString>().ok())
            .and_then(|n| n.to_str().ok());
        match name {
            Some("__newobj_ex__") => self.save_newobj_ex(&args)?,
            Some("__newobj__") => self.save_newobj(&args, obj)?,
            _ => {
                self.save(&callable)?;
                self.save(args.as_any())?;
                self.out.write(&[REDUCE])?;
            }
        }
        if let Some(obj) = obj {
            if let Some(index) = self.memo.get(obj) {
                // Made while its own arguments were written: a cycle through
                // the arguments; the memoized one is the object.
                self.out.write(&[POP])?;
                return self.write_get(index);
            }
            self.memoize(obj)?;
        }
        if let Some(items) = list_items {
            self.save_appends(&items)?;
        }
        if let Some(items) = dict_items {
            self.save_setitems(&items)?;
        }
        match (state, obj) {
            (Some(state), Some(obj)) if state_setter.is_some() => {
                // setter(obj, state), its result discarded.
                self.save(&state_setter.expect("checked above"))?;
                self.save(obj)?;
                self.save(&state)?;
                self.out.write(&[TUPLE1 + 1, REDUCE, POP])
            }
            (Some(state), _) => {
                self.save(&state)?;
                self.out.write(&[BUILD])
            }
            (None, _) => Ok(()),
        }
    }

    fn save_newobj(&mut self, args: &Bound<'py, PyTuple>, obj: Option<&Bound<'py, PyAny>>) -> PyResult<()> {
        if args.is_empty() {
            return Err(self.error("__newobj__ arglist is empty".into()));
        }
        let class = args.get_item(0)?;
        // SAFETY: a type check on a live object.
        if unsafe { ffi::PyType_Check(class.as_ptr()) } == 0 {
            return Err(self.error("args[0] from __newobj__ args is not a type".into()));
        }
        if let Some(obj) = obj
            && !obj.getattr(intern!(self.py, "__class__"))?.is(&class)
        {
            return Err(self.error("args[0] from __newobj__ args has the wrong class".into()));
        }
        self.save(&class)?;
        self.save(args.get_slice(1, args.len()).as_any())?;
        self.out.write(&[NEWOBJ])
    }

    fn save_newobj_ex(&mut self, args: &Bound<'py, PyTuple>) -> PyResult<()> {
        if args.len() != 3 {
            return Err(self.error(format!(
                "length of the NEWOBJ_EX argument tuple must be exactly 3, not {}",
                args.len()
            )));
        }
        let (class, positional, keywords) = (args.get_item(0)?, args.get_item(1)?, args.get_item(2)?);
        // SAFETY: a type check on a live object.
        if unsafe { ffi::PyType_Check(class.as_ptr()) } == 0 {
            let kind = class.get_type().name()?;
            return Err(self.error(format!(
                "first item from NEWOBJ_EX argument tuple must be a class, not {kind}"
            )));
        }
        let Ok(positional) = positional.cast_into::<PyTuple>() else {
            let kind = args.get_item(1)?.get_type().name()?;
            return Err(self.error(format!(
                "second item from NEWOBJ_EX argument tuple must be a tuple, not {kind}"
            )));
        };
        let Ok(keywords) = keywords.cast_into::<PyDict>() else {
            let kind = args.get_item(2)?.get_type().name()?;
            return Err(self.error(format!(
                "third item from NEWOBJ_EX argument tuple must be a dict, not {kind}"
            )));
        };
        if self.proto >= 4 {
            self.save(&class)?;
            self.save(positional.as_any())?;
            self.save(keywords.as_any())?;
            return self.out.write(&[NEWOBJ_EX]);
        }
        // Before protocol 4: partial(cls.__new__, cls, *args, **kwargs)().
        let py = self.py;
        let mut call_args = vec![class.getattr(intern!(py, "__new__"))?, class.clone()];
        call_args.extend(positional.iter());
        let partial = objects::functools_partial(py)?.call(PyTuple::new(py, call_args)?, Some(&keywords))?;
        self.save(&partial)?;
        self.save(PyTuple::empty(py).as_any())?;
        self.out.write(&[REDUCE])
    }

    /// `listitems` of a reduce tuple: APPEND or batches of APPENDS.
    fn save_appends(&mut self, items: &Bound<'py, PyAny>) -> PyResult<()> {
        self.save_batches(items, APPEND, APPENDS, |dumper, item| dumper.save(&item))
    }

    /// `dictitems` of a reduce tuple: pairs, SETITEM or batches of SETITEMS.
    fn save_setitems(&mut self, items: &Bound<'py, PyAny>) -> PyResult<()> {
        self.save_batches(items, SETITEM, SETITEMS, |dumper, pair| {
            let pair = pair
                .cast_into::<PyTuple>()
                .ok()
                .filter(|pair| pair.len() == 2)
                .ok_or_else(|| PyTypeError::new_err("dict items iterator must return 2-tuples"))?;
            dumper.save(&pair.get_item(0)?)?;
            dumper.save(&pair.get_item(1)?)
        })
    }

    /// The C pickler's batching of an iterator: one item alone with `single`,
    /// else MARK, up to `BATCH_SIZE` items, `batch`, until exhausted.
    fn save_batches(
        &mut self,
        items: &Bound<'py, PyAny>,
        single: u8,
        batch: u8,
        mut save_item: impl FnMut(&mut Self, Bound<'py, PyAny>) -> PyResult<()>,
    ) -> PyResult<()> {
        let next = || -> PyResult<Option<Bound<'py, PyAny>>> {
            // SAFETY: `items` passed PyIter_Check; PyIter_Next returns a new
            // reference, or null at the end or on error.
            let item = unsafe { ffi::PyIter_Next(items.as_ptr()) };
            if item.is_null() {
                return PyErr::take(items.py()).map_or(Ok(None), Err);
            }
            // SAFETY: a new reference.
            Ok(Some(unsafe { Bound::from_owned_ptr(items.py(), item) }))
        };
        loop {
            let Some(first) = next()? else { return Ok(()) };
            let Some(second) = next()? else {
                save_item(self, first)?;
                return self.out.write(&[single]);
            };
            self.out.write(&[MARK])?;
            save_item(self, first)?;
            let mut count = 1;
            let mut pending = Some(second);
            while let Some(item) = pending {
                save_item(self, item)?;
                count += 1;
                if count == BATCH_SIZE {
                    break;
                }
                pending = next()?;
            }
            self.out.write(&[batch])?;
            if count < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    // ---- globals -----------------------------------------------------------

    fn save_global(&mut self, obj: &Bound<'py, PyAny>, name: Option<&Bound<'py, PyString>>) -> PyResult<()> {
        let global = globals::resolve(obj, name)?;
        self.write_global(obj, global)
    }

    fn write_global(&mut self, obj: &Bound<'py, PyAny>, global: GlobalName<'py>) -> PyResult<()> {
        if let Some(code) = globals::extension_code(&global)? {
            return self.write_extension(obj, code);
        }
        if self.proto >= 4 {
            self.save_name(&global.module_name)?;
            self.save_name(&global.qualname)?;
            self.out.write(&[STACK_GLOBAL])?;
        } else if let GlobalName {
            parent: Some(parent),
            last_name: Some(last_name),
            ..
        } = &global
        {
            let getattr = objects::getattr_fn(self.py)?;
            let args = PyTuple::new(self.py, [parent.as_any(), last_name.as_any()])?;
            let reduced = PyTuple::new(self.py, [getattr.clone(), args.into_any()])?;
            self.save_reduce(&reduced, None)?;
        } else {
            self.write_text_global(&global)?;
        }
        self.memoize(obj).map(drop)
    }

    /// `GLOBAL module\nname\n`, the form before protocol 4.
    fn write_text_global(&mut self, global: &GlobalName<'py>) -> PyResult<()> {
        let (module, name) = if self.proto < 3 {
            globals::python2_names(&global.module_name, &global.qualname)?
        } else {
            (
                global.module_name.clone().into_any(),
                global.qualname.clone().into_any(),
            )
        };
        let mut op = vec![GLOBAL];
        for part in [&module, &name] {
            let text = part.cast::<PyString>()?.to_str()?;
            if self.proto < 3 && !text.is_ascii() {
                return Err(self.error(format!(
                    "can't pickle module identifier '{text}' using pickle protocol {}",
                    self.proto
                )));
            }
            op.extend_from_slice(text.as_bytes());
            op.push(b'\n');
        }
        self.out.write(&op)
    }

    fn write_extension(&mut self, obj: &Bound<'py, PyAny>, code: i64) -> PyResult<()> {
        match code {
            1..=0xff => self.out.write(&[EXT1, code as u8]),
            0x100..=0xffff => {
                let [low, high] = (code as u16).to_le_bytes();
                self.out.write(&[EXT2, low, high])
            }
            0x1_0000..=0x7fff_ffff => {
                let mut op = [EXT4; 5];
                op[1..].copy_from_slice(&(code as u32).to_le_bytes());
                self.out.write(&op)
            }
            _ => Err(self.error(format!(
                "Can't pickle {}: extension code {code} is out of range",
                obj.repr()?
            ))),
        }
    }

    /// A module or qualified name. By text only inside by-value parts:
    /// elsewhere the bytes stay those of the C pickler.
    fn save_name(&mut self, name: &Bound<'py, PyString>) -> PyResult<()> {
        match self.memo.get(name.as_any()) {
            Some(index) => self.write_get(index),
            None => self.save_str(name.as_any(), self.names_by_text > 0),
        }
    }

    // ---- atoms -------------------------------------------------------------

    fn save_int(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let mut overflow = 0;
        // SAFETY: `obj` is an exact int.
        let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(obj.as_ptr(), &mut overflow) };
        if overflow == 0 {
            if value == -1
                && let Some(err) = PyErr::take(self.py)
            {
                return Err(err);
            }
            return match value {
                0..=0xff => self.out.write(&[BININT1, value as u8]),
                0x100..=0xffff => {
                    let [low, high] = (value as u16).to_le_bytes();
                    self.out.write(&[BININT2, low, high])
                }
                _ => match i32::try_from(value) {
                    Ok(small) => {
                        let mut op = [BININT; 5];
                        op[1..].copy_from_slice(&small.to_le_bytes());
                        self.out.write(&op)
                    }
                    Err(_) => self.write_long(&long_bytes(value)),
                },
            };
        }
        // Beyond 64 bits (rare): through Python's own conversion, which
        // every supported version has (the C helpers changed in 3.13).
        let py = self.py;
        let bits: usize = obj.call_method0(intern!(py, "bit_length"))?.extract()?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item(intern!(py, "signed"), true)?;
        let encoded = obj.call_method(intern!(py, "to_bytes"), ((bits >> 3) + 1, "little"), Some(&kwargs))?;
        let mut bytes = encoded.cast::<PyBytes>()?.as_bytes().to_vec();
        trim_sign_byte(&mut bytes);
        self.write_long(&bytes)
    }

    /// LONG1 or LONG4: little-endian two's complement.
    fn write_long(&mut self, bytes: &[u8]) -> PyResult<()> {
        match u8::try_from(bytes.len()) {
            Ok(size) => self.out.write(&[LONG1, size])?,
            Err(_) => {
                let size = i32::try_from(bytes.len()).map_err(|_| self.overflow("int too large to pickle"))?;
                let mut op = [LONG4; 5];
                op[1..].copy_from_slice(&size.to_le_bytes());
                self.out.write(&op)?;
            }
        }
        self.out.write(bytes)
    }

    fn save_str(&mut self, obj: &Bound<'py, PyAny>, by_text: bool) -> PyResult<()> {
        let encoded;
        let mut size: ffi::Py_ssize_t = 0;
        // SAFETY: `obj` is an exact str; the UTF-8 form lives as long as it.
        let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj.as_ptr(), &mut size) };
        let (text, owner): (&[u8], &Bound<'py, PyAny>) = if data.is_null() {
            // Lone surrogates: written as the C pickler writes them.
            let _ = PyErr::take(self.py);
            encoded = obj.call_method1(intern!(self.py, "encode"), ("utf-8", "surrogatepass"))?;
            (encoded.cast::<PyBytes>()?.as_bytes(), &encoded)
        } else {
            // SAFETY: `size` bytes at `data`, kept alive by `obj`.
            (
                unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size as usize) },
                obj,
            )
        };
        if by_text && let Some(index) = self.memo.get_text(text) {
            return self.write_get(index);
        }
        let header = self.str_header(text.len())?;
        self.out
            .write_payload(header.bytes(), text, || Ok(PyBytes::new(obj.py(), text).into_any()))?;
        if by_text {
            // Found again by its text, so not recorded by identity too.
            let index = self.memo.take_index();
            self.write_put(index)?;
            self.memo.put_text(text, owner, index);
            return Ok(());
        }
        self.memoize(obj).map(drop)
    }

    fn str_header(&self, size: usize) -> PyResult<Header> {
        if size <= 0xff && self.proto >= 4 {
            return Ok(Header::new(SHORT_BINUNICODE, &[size as u8]));
        }
        if let Ok(size) = u32::try_from(size) {
            return Ok(Header::new(BINUNICODE, &size.to_le_bytes()));
        }
        if self.proto >= 4 {
            return Ok(Header::new(BINUNICODE8, &(size as u64).to_le_bytes()));
        }
        Err(self.overflow("serializing a string larger than 4 GiB requires pickle protocol 4 or higher"))
    }

    fn save_bytes(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let bytes = obj.cast::<PyBytes>()?;
        if self.proto < 3 {
            // No bytes opcodes before protocol 3: `_codecs.encode(text, 'latin1')`.
            let py = self.py;
            let reduced = if bytes.as_bytes().is_empty() {
                PyTuple::new(py, [py.get_type::<PyBytes>().into_any(), PyTuple::empty(py).into_any()])?
            } else {
                let text: String = bytes.as_bytes().iter().map(|&b| char::from(b)).collect();
                let args = PyTuple::new(py, [PyString::new(py, &text), PyString::new(py, "latin1")])?;
                PyTuple::new(py, [objects::codecs_encode(py)?.clone(), args.into_any()])?
            };
            return self.save_reduce(&reduced, Some(obj));
        }
        self.write_bytes_data(obj, bytes.as_bytes())
    }

    /// SHORT_BINBYTES, BINBYTES or BINBYTES8, then `obj` memoized.
    fn write_bytes_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        let header = match (u8::try_from(data.len()), u32::try_from(data.len())) {
            (Ok(size), _) => Header::new(SHORT_BINBYTES, &[size]),
            (_, Ok(size)) => Header::new(BINBYTES, &size.to_le_bytes()),
            _ if self.proto >= 4 => Header::new(BINBYTES8, &(data.len() as u64).to_le_bytes()),
            _ => {
                return Err(
                    self.overflow("serializing a bytes object larger than 4 GiB requires pickle protocol 4 or higher")
                );
            }
        };
        self.out.write_payload(header.bytes(), data, || Ok(obj.clone()))?;
        self.memoize(obj).map(drop)
    }

    fn save_bytearray(&mut self, array: &Bound<'py, PyByteArray>) -> PyResult<()> {
        let py = self.py;
        if self.proto < 5 {
            let kind = py.get_type::<PyByteArray>().into_any();
            let args = if array.is_empty() {
                PyTuple::empty(py)
            } else {
                PyTuple::new(py, [PyBytes::new(py, &array.to_vec())])?
            };
            let reduced = PyTuple::new(py, [kind, args.into_any()])?;
            return self.save_reduce(&reduced, Some(array.as_any()));
        }
        // SAFETY: no Python code runs while the slice is read (a sink gets
        // the object itself, not the slice).
        let data = unsafe { array.as_bytes() };
        self.write_bytearray_data(array.as_any(), data)
    }

    fn write_bytearray_data(&mut self, obj: &Bound<'py, PyAny>, data: &[u8]) -> PyResult<()> {
        let header = Header::new(BYTEARRAY8, &(data.len() as u64).to_le_bytes());
        self.out.write_payload(header.bytes(), data, || Ok(obj.clone()))?;
        self.memoize(obj).map(drop)
    }

    /// A `pickle.PickleBuffer`: in band as bytes or bytearray data, or out
    /// of band (NEXT_BUFFER) when `buffer_callback` returns a false value.
    fn save_pickle_buffer(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 5 {
            return Err(self.error("PickleBuffer can only pickled with protocol >= 5".into()));
        }
        self.pickle_buffer_view(obj)?;
        let in_band = match &self.buffer_callback {
            Some(callback) => callback.call1((obj,))?.is_truthy()?,
            None => true,
        };
        // Read again: the callback may have released the buffer.
        let view = self.pickle_buffer_view(obj)?;
        let readonly = view.readonly != 0;
        if !in_band {
            return self.out.write(if readonly {
                &[NEXT_BUFFER, READONLY_BUFFER]
            } else {
                &[NEXT_BUFFER]
            });
        }
        // SAFETY: a contiguous view of `len` bytes, held by `obj`; no Python
        // code runs while the slice is read (a sink gets `obj` itself).
        let data = unsafe { std::slice::from_raw_parts(view.buf.cast::<u8>(), view.len as usize) };
        if readonly {
            self.write_bytes_data(obj, data)
        } else {
            self.write_bytearray_data(obj, data)
        }
    }

    fn pickle_buffer_view(&self, obj: &Bound<'py, PyAny>) -> PyResult<&ffi::Py_buffer> {
        // SAFETY: `obj` is a PickleBuffer; the view it returns lives as long
        // as `obj` is not released (callers re-read it after Python code).
        let view = unsafe { PyPickleBuffer_GetBuffer(obj.as_ptr()) };
        if view.is_null() {
            return Err(PyErr::fetch(self.py));
        }
        // SAFETY: non-null, owned by `obj`.
        let view = unsafe { &*view };
        // SAFETY: reads the view's shape only.
        if !view.suboffsets.is_null() || unsafe { ffi::PyBuffer_IsContiguous(view, b'A' as _) } == 0 {
            return Err(PyBufferError::new_err(
                "PickleBuffer can not be pickled when pointing to a non-contiguous buffer",
            ));
        }
        Ok(view)
    }

    // ---- containers --------------------------------------------------------

    fn save_tuple(&mut self, tuple: &Bound<'py, PyTuple>) -> PyResult<()> {
        let size = tuple.len();
        if size == 0 {
            return self.out.write(&[EMPTY_TUPLE]);
        }
        let short = size <= 3;
        if !short {
            self.out.write(&[MARK])?;
        }
        for item in tuple.iter() {
            self.save(&item)?;
        }
        if let Some(index) = self.memo.get(tuple.as_any()) {
            // The tuple was made while its items were written (a cycle
            // through a mutable item): drop the items, use that one.
            if short {
                self.out.write(&vec![POP; size])?;
            } else {
                self.out.write(&[POP_MARK])?;
            }
            return self.write_get(index);
        }
        self.out.write(&[if short { TUPLE1 + size as u8 - 1 } else { TUPLE }])?;
        self.memoize(tuple.as_any()).map(drop)
    }

    fn save_list(&mut self, list: &Bound<'py, PyList>) -> PyResult<()> {
        self.out.write(&[EMPTY_LIST])?;
        self.memoize(list.as_any())?;
        if list.len() == 1 {
            self.save(&list.get_item(0)?)?;
            return self.out.write(&[APPEND]);
        }
        // The length is read again after each item: reducers may change it.
        let mut index = 0;
        while index < list.len() {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE && index < list.len() {
                self.save(&list.get_item(index)?)?;
                index += 1;
                count += 1;
            }
            self.out.write(&[APPENDS])?;
        }
        Ok(())
    }

    fn save_dict(&mut self, dict: &Bound<'py, PyDict>) -> PyResult<()> {
        self.out.write(&[EMPTY_DICT])?;
        self.memoize(dict.as_any())?;
        let size = dict.len();
        if size == 0 {
            return Ok(());
        }
        let mut position: ffi::Py_ssize_t = 0;
        let mut next = |dumper: &Self| -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
            if dict.len() != size {
                return Err(PyRuntimeError::new_err("dictionary changed size during iteration"));
            }
            let (mut key, mut value) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: PyDict_Next bounds-checks `position` against the
            // current table; the borrowed pair is made strong at once.
            if unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) } == 0 {
                return Ok(None);
            }
            unsafe {
                Ok(Some((
                    Bound::from_borrowed_ptr(dumper.py, key),
                    Bound::from_borrowed_ptr(dumper.py, value),
                )))
            }
        };
        if size == 1 {
            if let Some((key, value)) = next(self)? {
                self.save(&key)?;
                self.save(&value)?;
            }
            return self.out.write(&[SETITEM]);
        }
        loop {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE {
                let Some((key, value)) = next(self)? else { break };
                self.save(&key)?;
                self.save(&value)?;
                count += 1;
            }
            self.out.write(&[SETITEMS])?;
            if dict.len() != size {
                return Err(PyRuntimeError::new_err("dictionary changed size during iteration"));
            }
            if count < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    fn save_set(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 4 {
            return self.save_set_as_call(set);
        }
        self.out.write(&[EMPTY_SET])?;
        self.memoize(set)?;
        if set.len()? == 0 {
            return Ok(());
        }
        let mut items = set.try_iter()?;
        loop {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE {
                let Some(item) = items.next() else { break };
                self.save(&item?)?;
                count += 1;
            }
            self.out.write(&[ADDITEMS])?;
            if count < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    fn save_frozenset(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 4 {
            return self.save_set_as_call(set);
        }
        self.out.write(&[MARK])?;
        for item in set.try_iter()? {
            self.save(&item?)?;
        }
        if let Some(index) = self.memo.get(set) {
            self.out.write(&[POP_MARK])?;
            return self.write_get(index);
        }
        self.out.write(&[FROZENSET])?;
        self.memoize(set).map(drop)
    }

    /// `set(items)` or `frozenset(items)`, the form before protocol 4.
    fn save_set_as_call(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let items = PyList::new(py, set.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        let args = PyTuple::new(py, [items])?;
        let reduced = PyTuple::new(py, [set.get_type().into_any(), args.into_any()])?;
        self.save_reduce(&reduced, Some(set))
    }

    // ---- memo --------------------------------------------------------------

    fn memoize(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<u32> {
        let index = self.memo.put(obj);
        self.write_put(index)?;
        Ok(index)
    }

    /// MEMOIZE, or BINPUT/LONG_BINPUT before protocol 4.
    fn write_put(&mut self, index: u32) -> PyResult<()> {
        if self.proto >= 4 {
            self.out.write(&[MEMOIZE])?;
        } else if let Ok(small) = u8::try_from(index) {
            self.out.write(&[BINPUT, small])?;
        } else {
            let mut op = [LONG_BINPUT; 5];
            op[1..].copy_from_slice(&index.to_le_bytes());
            self.out.write(&op)?;
        }
        Ok(())
    }

    fn write_get(&mut self, index: u32) -> PyResult<()> {
        match u8::try_from(index) {
            Ok(small) => self.out.write(&[BINGET, small]),
            Err(_) => {
                let mut op = [LONG_BINGET; 5];
                op[1..].copy_from_slice(&index.to_le_bytes());
                self.out.write(&op)
            }
        }
    }

    fn error(&self, message: String) -> PyErr {
        objects::new_pickling_error(self.py, message)
    }

    fn overflow(&self, message: &str) -> PyErr {
        pyo3::exceptions::PyOverflowError::new_err(message.to_owned())
    }
}

/// An opcode and its size argument, without a heap allocation.
struct Header {
    bytes: [u8; 9],
    len: usize,
}

impl Header {
    fn new(op: u8, size: &[u8]) -> Self {
        let mut bytes = [op; 9];
        bytes[1..=size.len()].copy_from_slice(size);
        Self {
            bytes,
            len: size.len() + 1,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An int's LONG1 payload: little-endian two's complement in the fewest
/// bytes the C pickler uses (one more than the magnitude's bits need,
/// less a redundant sign byte).
pub(crate) fn long_bytes(value: i64) -> Vec<u8> {
    let bits = 64 - value.unsigned_abs().leading_zeros() as usize;
    let mut bytes = i128::from(value).to_le_bytes()[..(bits >> 3) + 1].to_vec();
    trim_sign_byte(&mut bytes);
    bytes
}

/// Drops the top byte of a negative number when it only repeats the sign.
fn trim_sign_byte(bytes: &mut Vec<u8>) {
    let n = bytes.len();
    if n > 1 && bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0 {
        bytes.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::long_bytes;

    #[test]
    fn long_payloads_match_python_encoding() {
        // pickle.encode_long from the Python pickler, for the same values.
        assert_eq!(long_bytes(1 << 31), vec![0x00, 0x00, 0x00, 0x80, 0x00]);
        assert_eq!(long_bytes(-(1 << 31) - 1), vec![0xff, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(long_bytes(-(1 << 32)), vec![0x00, 0x00, 0x00, 0x00, 0xff]);
        assert_eq!(
            long_bytes(i64::MAX),
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(
            long_bytes(i64::MIN),
            vec![0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80]
        );
    }
}
