//! Walks an object graph and writes its pickle, making the choices the C
//! pickler makes, in its order: exact builtin types first, the memo, then
//! our reducers (functions, classes, the table's kinds), `copyreg`'s
//! dispatch table, globals, and `__reduce_ex__` for the rest. Its output
//! loads with any unpickler and is, for plain data, the C pickler's bytes.
//!
//! Two differences by design: the reconstructors' names are checked once
//! per process instead of imported per dump (see `globals.rs`), and names
//! are memoized by text (see `memo.rs`).

mod builtin_methods;
mod classes;
mod code;
mod containers;
mod defaults;
mod descriptors;
mod functions;
mod own_reduce;
mod reduce;
mod references;
mod scalars;
mod slot_plans;

pub(crate) use defaults::set_native_default_reduce;
pub(crate) use own_reduce::set_own_reduce_calls;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyDict, PyList, PyTuple};

use super::FastPathDeclined;
use super::memo::Memo;
use super::opcodes::*;
use super::output::Output;
use crate::objects;
use crate::pickler::PicklerState;
use crate::quick_hash::QuickMap;
use crate::stable::SortedStrings;

/// Nesting deeper than this is left to the C pickler, whose frames on the
/// native stack are smaller than ours: measured, 1,200 levels of objects
/// reduced through `__reduce_ex__` take under 2 MiB of stack. Python's
/// default recursion limit (1,000) stops both writers before this.
pub(crate) const MAX_DEPTH: usize = 1200;

pub(crate) struct Dumper<'a, 'py> {
    py: Python<'py>,
    proto: u8,
    out: Output<'py>,
    memo: Memo<'py>,
    state: &'a PicklerState,
    buffer_callback: Option<Bound<'py, PyAny>>,
    /// Above zero while writing a function's, class's or code object's
    /// parts: strings there are memoized by text.
    names_by_text: u32,
    /// Above zero while writing a function or class that travels by value:
    /// a pickle that loads only with its reconstructors.
    by_value_parts: u32,
    depth: usize,
    /// Set while recording a code object's fields (see `code.rs`): where the
    /// memo is written and read (the reads are left out of the output), and
    /// the strings written by text.
    recording: Option<Vec<code::Event>>,
    /// While recording: the address of the code object's name blob, which
    /// a pickle holds once for all its code objects that share it (see
    /// `save_name_blob`).
    name_blob: usize,
    /// By-reference decisions on functions and modules made in this dump,
    /// which a function's state asks for before it writes them.
    by_reference: QuickMap<usize, (Bound<'py, PyAny>, bool)>,
    /// Where the stand-in for each module's globals was written, by the
    /// address of the globals (kept alive here); None when the pickler's
    /// state keeps the stand-ins itself (see `functions.rs`).
    globals_written: Option<QuickMap<usize, (Bound<'py, PyAny>, u32)>>,
    /// The module whose registration for by-value was asked last, and the
    /// answer: the functions of one module ask in turn.
    last_registry_answer: Option<(Bound<'py, PyAny>, bool)>,
    /// The list a code object's replay maps its memo indexes in, kept for
    /// the next replay of the dump (a malloc and a free a function).
    replay_indexes: Vec<u32>,
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
            by_value_parts: 0,
            depth: 0,
            recording: None,
            name_blob: 0,
            by_reference: QuickMap::default(),
            globals_written: None,
            last_registry_answer: None,
            replay_indexes: Vec::new(),
        }
    }

    /// For a state made for this one dump: stand-ins for module globals
    /// are written without being made (see `functions.rs`).
    pub(crate) fn one_dump_only(mut self) -> Self {
        self.globals_written = Some(QuickMap::default());
        self
    }

    /// The output and the memo, once the dump is over.
    pub(crate) fn into_parts(self) -> (Output<'py>, Memo<'py>) {
        (self.out, self.memo)
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
        let is_str = kind == &raw mut ffi::PyUnicode_Type;
        if is_str && self.names_by_text > 0 {
            // By text alone, never by identity: an equal string met earlier
            // outside by-value parts would otherwise be read back only if
            // it happened to be the same (interned) object.
            return self.save_str(obj, true);
        }
        if let Some(index) = self.memo.get(obj) {
            return self.write_get(index);
        }
        if is_str {
            return self.save_str(obj, false);
        }
        if kind == &raw mut ffi::PyBytes_Type {
            return self.save_bytes(obj);
        }
        self.enter()?;
        let result = self.save_compound(obj, kind);
        self.leave();
        result
    }

    /// Whether a function travels by reference, decided once per dump.
    fn function_by_reference(&mut self, func: &Bound<'py, PyAny>) -> PyResult<bool> {
        self.decided_once(func, crate::byvalue::by_reference)
    }

    /// A function in the native target: by value, or by reference from
    /// where the by-value decision found it, without `save_global` looking
    /// it up again (~2.6k a function: an enum's `__new__` and
    /// `_generate_next_value_`, a class's inherited methods). A decision
    /// made earlier in this dump kept no place, so that one looks it up.
    fn save_function_as_decided(&mut self, func: &Bound<'py, PyAny>) -> PyResult<()> {
        let key = func.as_ptr() as usize;
        let found = match self.by_reference.get(&key) {
            Some((_, true)) => return self.save_global(func, None),
            Some((_, false)) => return self.save_function(func),
            None => {
                let last = &mut self.last_registry_answer;
                crate::byvalue::reference_unless(func, |module| registered_once(last, module))?
            }
        };
        self.by_reference.insert(key, (func.clone(), found.is_some()));
        match found {
            Some(found) => self.save_found_global(func, found),
            None => self.save_function(func),
        }
    }

    /// Whether a module travels by name, decided once per dump.
    fn module_by_reference(&mut self, module: &Bound<'py, PyAny>) -> PyResult<bool> {
        self.decided_once(module, crate::byvalue::module_by_reference)
    }

    fn decided_once(
        &mut self,
        obj: &Bound<'py, PyAny>,
        decide: fn(&Bound<'py, PyAny>) -> PyResult<bool>,
    ) -> PyResult<bool> {
        let key = obj.as_ptr() as usize;
        if let Some((_, decided)) = self.by_reference.get(&key) {
            return Ok(*decided);
        }
        let decided = decide(obj)?;
        self.by_reference.insert(key, (obj.clone(), decided));
        Ok(decided)
    }

    #[inline]
    fn enter(&mut self) -> PyResult<()> {
        if self.depth >= MAX_DEPTH {
            return Err(too_deep());
        }
        // SAFETY: attached; a non-zero result has set RecursionError.
        if unsafe { ffi::Py_EnterRecursiveCall(c" while pickling an object".as_ptr()) } != 0 {
            return Err(fetch_error(self.py));
        }
        self.depth += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
        // SAFETY: paired with the successful Py_EnterRecursiveCall in `enter`.
        unsafe { ffi::Py_LeaveRecursiveCall() };
    }

    /// Dicts, lists and tuples here; everything rarer out of line, so that
    /// a plain-data dump's loop stays small in the code cache.
    fn save_compound(&mut self, obj: &Bound<'py, PyAny>, kind: *mut ffi::PyTypeObject) -> PyResult<()> {
        // SAFETY: comparing type addresses; each cast matches the exact type checked.
        unsafe {
            if kind == &raw mut ffi::PyDict_Type {
                return self.save_dict(obj.cast_unchecked::<PyDict>());
            }
            if kind == &raw mut ffi::PyList_Type {
                return self.save_list(obj.cast_unchecked::<PyList>());
            }
            if kind == &raw mut ffi::PyTuple_Type {
                return self.save_tuple(obj.cast_unchecked::<PyTuple>());
            }
        }
        self.save_uncommon(obj, kind)
    }

    #[inline(never)]
    fn save_uncommon(&mut self, obj: &Bound<'py, PyAny>, kind: *mut ffi::PyTypeObject) -> PyResult<()> {
        // SAFETY: comparing type addresses; the cast matches the exact type checked.
        unsafe {
            if kind == &raw mut ffi::PySet_Type {
                return self.save_set(obj);
            }
            if kind == &raw mut ffi::PyFrozenSet_Type {
                return self.save_frozenset(obj);
            }
            if kind == &raw mut ffi::PyByteArray_Type {
                return self.save_bytearray(obj.cast_unchecked::<PyByteArray>());
            }
        }
        if kind.cast() == objects::pickle_buffer_type(self.py)?.as_ptr() {
            return self.save_pickle_buffer(obj);
        }
        if self.proto >= 4
            && let Ok(sorted) = obj.cast_exact::<SortedStrings>()
        {
            return self.save_sorted_strings(sorted);
        }
        self.save_reduced(obj, kind)
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
            if self.recording.is_some() {
                self.record_put();
            }
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
        if self.recording.is_some() {
            self.record_get(index);
            return Ok(());
        }
        match u8::try_from(index) {
            Ok(small) => self.out.write(&[BINGET, small]),
            Err(_) => {
                let mut op = [LONG_BINGET; 5];
                op[1..].copy_from_slice(&index.to_le_bytes());
                self.out.write(&op)
            }
        }
    }

    // Recording is for code objects only: out of line, so that the growth
    // of the events' list stays out of every plain write.
    #[inline(never)]
    fn record_get(&mut self, index: u32) {
        let at = self.out.written();
        if let Some(events) = &mut self.recording {
            events.push(code::Event::Get { at, index });
        }
    }

    #[inline(never)]
    fn record_put(&mut self) {
        let after = self.out.written();
        if let Some(events) = &mut self.recording {
            events.push(code::Event::Put { after });
        }
    }

    #[cold]
    #[inline(never)]
    fn error(&self, message: String) -> PyErr {
        objects::new_pickling_error(self.py, message)
    }

    #[cold]
    #[inline(never)]
    fn overflow(&self, message: &str) -> PyErr {
        pyo3::exceptions::PyOverflowError::new_err(message.to_owned())
    }
}

/// The error of a failed call into the interpreter, built out of line
/// from the paths that rarely need it.
#[cold]
#[inline(never)]
pub(super) fn fetch_error(py: Python<'_>) -> PyErr {
    PyErr::fetch(py)
}

#[cold]
#[inline(never)]
fn too_deep() -> PyErr {
    FastPathDeclined::new_err("nesting too deep for the native writer")
}

/// Whether `module` is registered for by-value, asked once per dump for
/// consecutive questions about the same module (~0.4k each: its name and
/// every parent package are looked up in the registry), as the by-value
/// decisions of a dump are kept for the rest of it.
fn registered_once<'py>(last: &mut Option<(Bound<'py, PyAny>, bool)>, module: &Bound<'py, PyAny>) -> PyResult<bool> {
    if let Some((asked, answer)) = last
        && asked.is(module)
    {
        return Ok(*answer);
    }
    let answer = crate::registry::is_registered(module)?;
    *last = Some((module.clone(), answer));
    Ok(answer)
}
