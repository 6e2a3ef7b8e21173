//! Objects without an opcode of their own: the choice of reducer (ours,
//! `copyreg`'s table, `__reduce_ex__`) and the writing of the reduce tuple
//! it returns, with the C pickler's checks, messages and batching.

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::Dumper;
use super::own_reduce::{TypeReduce, call_own_reduce, type_reduce};
use crate::objects;
use crate::reconstruct::descriptors::DescriptorKind;
use crate::reducers::class::{self, Travel};
use crate::reducers::{self, function};
use crate::target::Target;
use crate::writer::globals;
use crate::writer::opcodes::*;

impl<'py> Dumper<'_, 'py> {
    /// Anything without an opcode of its own: our reducers, then `copyreg`'s
    /// table, then a global for classes and functions, then `__reduce_ex__`.
    pub(super) fn save_reduced(&mut self, obj: &Bound<'py, PyAny>, kind: *mut ffi::PyTypeObject) -> PyResult<()> {
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
        let native = self.state.reconstructors().target == Target::Native;
        if is_function && native {
            return self.save_function_as_decided(obj);
        }
        // SAFETY: a type check on a live object.
        if unsafe { ffi::PyModule_CheckExact(obj.as_ptr()) } != 0 && self.module_by_reference(obj)? {
            return self.save_module_by_name(obj);
        }
        if native && let Some(descriptor) = DescriptorKind::of_exact_type(py, obj.get_type().as_any())? {
            return self.save_descriptor(obj, descriptor);
        }
        if is_code && self.recording.is_some() {
            return self.save_nested_code(obj);
        }
        let mut found_by_name = None;
        let ours = if is_function {
            function::reduce(self.state, obj)?
        } else if is_class {
            let last = &mut self.last_registry_answer;
            match class::travel_unless(self.state, obj, |module| super::registered_once(last, module))? {
                Travel::Reduced(reduced) => reduced,
                // A plain class (no metaclass that `copyreg`'s table could
                // hold), found where the by-value decision looked it up.
                Travel::ByName(Some(found)) if kind == &raw mut ffi::PyType_Type => {
                    return self.save_found_global(obj, found);
                }
                Travel::ByName(found) => {
                    // Written from there once `copyreg`'s table, below,
                    // has no reducer for its metaclass (an enum's base).
                    found_by_name = found;
                    py.NotImplemented().into_bound(py)
                }
                Travel::ByValue => {
                    let shape = class::ByValue::read(obj, native)?;
                    return self.save_class_by_value(obj, shape);
                }
            }
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
                None if is_class => {
                    return match found_by_name {
                        Some(found) => self.save_found_global(obj, found),
                        None => self.save_global(obj, None),
                    };
                }
                None => match self.reduce_without_table(obj)? {
                    Some(reduced) => reduced,
                    None => return Ok(()),
                },
            }
        };
        if let Ok(name) = reduced.cast::<PyString>() {
            return self.save_global(obj, Some(name));
        }
        let Ok(reduced) = reduced.cast::<PyTuple>() else {
            return Err(self.error("__reduce__ must return a string or tuple".into()));
        };
        // A module by value is a by-value part too: its namespace's keys
        // are its functions' names, which their code objects repeat.
        // SAFETY: a type check on a live object.
        let is_module = unsafe { ffi::PyModule_Check(obj.as_ptr()) } != 0;
        let by_value = is_function || is_class || is_code || is_module;
        self.names_by_text += u32::from(by_value);
        let result = self.save_reduce(reduced, Some(obj));
        self.names_by_text -= u32::from(by_value);
        result
    }

    /// `subimport(name)`: what the module reducer returns for an
    /// importable module, written without the reduce tuple.
    fn save_module_by_name(&mut self, module: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        self.save(self.state.reconstructors().subimport.bind(py))?;
        self.save(&module.getattr(intern!(py, "__name__"))?)?;
        self.out.write(&[TUPLE1, REDUCE])?;
        self.memoize(module).map(drop)
    }

    /// What `__reduce_ex__` returns for `obj`, which no table reduces; None
    /// when `obj` was written as its default reduction, without the call.
    fn reduce_without_table(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match type_reduce(obj) {
            TypeReduce::CallDirectly(function) => return call_own_reduce(&function, obj).map(Some),
            TypeReduce::Objects if self.save_default_reduced(obj)? => return Ok(None),
            TypeReduce::Objects | TypeReduce::Other => {}
        }
        match super::builtin_methods::reduction(obj)? {
            Some(reduced) => Ok(Some(reduced)),
            None => self.reduce_ex(obj).map(Some),
        }
    }

    #[inline(never)]
    fn reduce_ex(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        match crate::byvalue::optional_attr(obj, intern!(py, "__reduce_ex__"))? {
            Some(method) => method.call1((self.proto,)),
            None => Err(self.cannot_pickle(obj)),
        }
    }

    #[cold]
    #[inline(never)]
    fn cannot_pickle(&self, obj: &Bound<'py, PyAny>) -> PyErr {
        let described = obj
            .get_type()
            .name()
            .and_then(|kind| Ok(format!("can't pickle '{kind}' object: {}", obj.repr()?)));
        match described {
            Ok(message) => self.error(message),
            Err(err) => err,
        }
    }

    /// A reduce tuple `(callable, args[, state[, listitems[, dictitems[,
    /// state_setter]]]])`; `obj` is memoized once made (None: not at all).
    pub(super) fn save_reduce(
        &mut self,
        reduced: &Bound<'py, PyTuple>,
        obj: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<()> {
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
                return Err(self.not_an_iterator(position, item));
            }
        }
        if let Some(setter) = &state_setter
            && !setter.is_callable()
        {
            return Err(self.not_a_setter(setter));
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
        if let Some(obj) = obj
            && self.memoize_made(obj)?
        {
            return Ok(());
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

    #[cold]
    #[inline(never)]
    fn not_an_iterator(&self, position: &str, item: &Bound<'py, PyAny>) -> PyErr {
        match item.get_type().name() {
            Ok(kind) => self.error(format!(
                "{position} element of the tuple returned by __reduce__ must be an iterator, not {kind}"
            )),
            Err(err) => err,
        }
    }

    #[cold]
    #[inline(never)]
    fn not_a_setter(&self, setter: &Bound<'py, PyAny>) -> PyErr {
        match setter.get_type().name() {
            Ok(kind) => self.error(format!(
                "sixth element of the tuple returned by __reduce__ must be a function, not {kind}"
            )),
            Err(err) => err,
        }
    }

    /// Memoizes `obj`, just made on the stack; true when writing its
    /// arguments had already made and memoized it (a cycle through the
    /// arguments): the memoized one is the object, this one is dropped.
    pub(super) fn memoize_made(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        if let Some(index) = self.memo.get(obj) {
            self.out.write(&[POP])?;
            self.write_get(index)?;
            return Ok(true);
        }
        self.memoize(obj)?;
        Ok(false)
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

    #[inline(never)]
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
}
