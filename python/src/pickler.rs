//! The native half of `flightpickle.Pickler`: its `reducer_override` and the
//! state it keeps per pickler.
//!
//! The C pickler looks `reducer_override` up on the pickler at each `dump`
//! and then calls what it found once per object. `ReducerOverride` is set as
//! the class attribute: looking it up on a pickler returns a method bound to
//! that pickler's `PicklerState`, a native callable with no Python frame per
//! object. A subclass that defines its own `reducer_override` still wins by
//! normal attribute lookup, and can call `super().reducer_override(obj)`.
//!
//! The C pickler also looks every object's type up in `dispatch_table`, and
//! a miss in anything but its own default (copyreg's dict) costs a raised
//! KeyError per object. So when a pickler uses both our `reducer_override`
//! and our default table, the lookup in our reducers moves into
//! `reducer_override` and the pickler's table is unset, which makes the C
//! pickler read `copyreg.dispatch_table` directly: same reducers, same
//! order, no exceptions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::dispatch::DispatchTable;
use crate::reducers::{self, class, function};
use crate::target::{self, Reconstructors, Target};

/// Name of the pickler instance attribute that holds its `PicklerState`.
const STATE_ATTR: &str = "_flightpickle_state";

/// A function's globals dict and the dict that stands for it in the pickle.
type SharedGlobals = (Py<PyDict>, Py<PyDict>);

/// A set of strings in some state and its sorted stand-in.
type StandIn = (Py<PyAny>, Py<PyAny>);

/// What one pickler remembers across the objects (and `dump` calls) it pickles.
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct PicklerState {
    protocol: i32,
    /// Decided when the pickler is made; names the reconstructors it writes.
    reconstructors: &'static Reconstructors,
    /// `id(func.__globals__)` to the dict that stands for it in the pickle,
    /// so that functions sharing globals still share them after loading.
    /// The original is kept alive so that its id cannot be reused meanwhile.
    shared_globals: Mutex<HashMap<usize, SharedGlobals>>,
    /// Stand-ins for the sets of strings in function and class state, so
    /// that a set shared by two functions is still one set after loading.
    /// The original is kept alive so that its id cannot be reused meanwhile.
    stable_values: Mutex<HashMap<usize, StandIn>>,
    /// Whether `reducer_override` consults our reducers itself (see above).
    owns_table: AtomicBool,
    /// The file and buffer callback the pickler was made with (None for a
    /// subclass that set itself up its own way), for native dumps.
    pub(crate) output: Option<PicklerOutput>,
    /// What the C pickler's memo holds or should hold (see `pickler_dump.rs`).
    pub(crate) memo: Mutex<MemoState>,
}

/// Where a pickler writes: its file, and the callback for out-of-band buffers.
pub(crate) struct PicklerOutput {
    pub(crate) file: Py<PyAny>,
    pub(crate) buffer_callback: Option<Py<PyAny>>,
}

/// A pickler's memo, as far as native dumps need to know it.
#[derive(Default)]
pub(crate) enum MemoState {
    /// Empty: nothing dumped since the pickler was made or its memo cleared.
    #[default]
    Empty,
    /// A native dump's memo, not handed to the C pickler yet.
    Carried(crate::writer::CarriedMemo),
    /// The C pickler's own, possibly holding entries.
    InCPickler,
}

#[pymethods]
impl PicklerState {
    /// `target` is a wire target's name; None means the process default.
    /// `file` and `buffer_callback` are the pickler's, for native dumps.
    #[new]
    #[pyo3(signature = (protocol, target = None, file = None, buffer_callback = None))]
    fn py_new(
        py: Python<'_>,
        protocol: i32,
        target: Option<&str>,
        file: Option<Py<PyAny>>,
        buffer_callback: Option<Py<PyAny>>,
    ) -> PyResult<Self> {
        let mut state = Self::new(py, protocol, target)?;
        state.output = file.map(|file| PicklerOutput {
            file,
            buffer_callback: buffer_callback.filter(|callback| !callback.is_none(py)),
        });
        Ok(state)
    }

    #[getter]
    pub(crate) fn protocol(&self) -> i32 {
        self.protocol
    }

    #[getter]
    fn target(&self) -> &'static str {
        self.reconstructors.target.name()
    }

    /// Reduces functions and classes that cannot travel by reference, and
    /// the kinds in our table when this pickler lets us own it; for anything
    /// else, `NotImplemented` after two type-flag checks and a dict miss.
    fn reducer_override<'py>(&self, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: type checks on a live object.
        let (is_function, is_class) = unsafe {
            (
                pyo3::ffi::PyFunction_Check(obj.as_ptr()) != 0,
                pyo3::ffi::PyType_Check(obj.as_ptr()) != 0,
            )
        };
        if is_function {
            function::reduce(self, obj)
        } else if is_class {
            class::reduce(self, obj)
        } else if self.owns_table.load(Ordering::Relaxed) {
            match reducers::registered(obj.py())?.get_item(obj.get_type())? {
                Some(reducer) => reducer.call1((obj,)),
                None => Ok(obj.py().NotImplemented().into_bound(obj.py())),
            }
        } else {
            Ok(obj.py().NotImplemented().into_bound(obj.py()))
        }
    }
}

impl PicklerState {
    /// A state with no file: the module-level writer's, or a pickler's
    /// whose `__init__` did not make one.
    pub(crate) fn new(py: Python<'_>, protocol: i32, target: Option<&str>) -> PyResult<Self> {
        Ok(Self {
            protocol,
            reconstructors: target::resolve(target)?.reconstructors(py)?,
            shared_globals: Mutex::new(HashMap::new()),
            stable_values: Mutex::new(HashMap::new()),
            owns_table: AtomicBool::new(false),
            output: None,
            memo: Mutex::new(MemoState::Empty),
        })
    }

    /// Whether `reducer_override` has taken over the pickler's table, which
    /// the C pickler then no longer holds.
    pub(crate) fn owns_table(&self) -> bool {
        self.owns_table.load(Ordering::Relaxed)
    }

    pub(crate) fn reconstructors(&self) -> &'static Reconstructors {
        self.reconstructors
    }

    /// `value` as function or class state writes it: a set of strings in
    /// sorted order (see `stable.rs`), the same stand-in each time.
    pub(crate) fn stable<'py>(&self, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let py = value.py();
        let key = value.as_ptr() as usize;
        let cache = || {
            self.stable_values
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some((_, stand_in)) = cache().get(&key) {
            return Ok(stand_in.bind(py).clone());
        }
        let stand_in = crate::stable::value(value)?;
        if !stand_in.is(value) {
            cache().insert(key, (value.clone().unbind(), stand_in.clone().unbind()));
        }
        Ok(stand_in)
    }

    /// The dict that stands for `globals` in this pickler's output, and
    /// whether it was just made (and so still has to be seeded).
    pub(crate) fn shared_globals<'py>(&self, globals: &Bound<'py, PyDict>) -> (Bound<'py, PyDict>, bool) {
        let py = globals.py();
        let key = globals.as_ptr() as usize;
        let mut map = self
            .shared_globals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, shared)) = map.get(&key) {
            return (shared.bind(py).clone(), false);
        }
        let shared = PyDict::new(py);
        map.insert(key, (globals.clone().unbind(), shared.clone().unbind()));
        (shared, true)
    }
}

/// The class attribute `Pickler.reducer_override`.
#[pyclass(frozen, module = "flightpickle._native")]
pub(crate) struct ReducerOverride;

#[pymethods]
impl ReducerOverride {
    #[new]
    fn new() -> Self {
        Self
    }

    /// On a pickler: its state's bound `reducer_override`. On the class: the
    /// descriptor itself, callable as `(pickler, obj)`.
    fn __get__<'py>(
        slf: Bound<'py, Self>,
        instance: Option<Bound<'py, PyAny>>,
        owner: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = owner;
        match instance {
            Some(pickler) => {
                let state = state_of(&pickler)?;
                take_over_table(&slf, &pickler, state.get())?;
                state.getattr(intern!(slf.py(), "reducer_override"))
            }
            None => Ok(slf.into_any()),
        }
    }

    fn __call__<'py>(&self, pickler: &Bound<'py, PyAny>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        state_of(pickler)?.get().reducer_override(obj)
    }
}

/// The pickler's state, made on first use for picklers whose `__init__`
/// did not make one (subclasses that set things up their own way).
pub(crate) fn state_of<'py>(pickler: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PicklerState>> {
    let py = pickler.py();
    let name = intern!(py, STATE_ATTR);
    if let Some(state) = crate::byvalue::optional_attr(pickler, name)?
        && let Ok(state) = state.cast_into::<PicklerState>()
    {
        return Ok(state);
    }
    let protocol = match crate::byvalue::optional_attr(pickler, intern!(py, "proto"))? {
        Some(proto) => proto.extract()?,
        None => 5,
    };
    let state = Bound::new(py, PicklerState::new(py, protocol, None)?)?;
    pickler.setattr(name, &state)?;
    Ok(state)
}

/// Makes `pickler`'s target the one its table reducers use on this thread,
/// for the duration of a `dump`; returns what `leave_dump` restores.
#[pyfunction]
pub(crate) fn enter_dump(pickler: &Bound<'_, PyAny>) -> PyResult<Option<&'static str>> {
    let target = state_of(pickler)?.get().reconstructors.target;
    Ok(target::activate(target).map(Target::name))
}

#[pyfunction]
#[pyo3(signature = (previous))]
pub(crate) fn leave_dump(previous: Option<&str>) -> PyResult<()> {
    target::restore(previous.map(Target::parse).transpose()?);
    Ok(())
}

/// Unsets the pickler's own `dispatch_table` when both its resolution of
/// `reducer_override` is this descriptor (not a subclass override that
/// merely calls `super()`) and its table is our default chain.
fn take_over_table(
    descriptor: &Bound<'_, ReducerOverride>,
    pickler: &Bound<'_, PyAny>,
    state: &PicklerState,
) -> PyResult<()> {
    let py = pickler.py();
    if state.owns_table.load(Ordering::Relaxed) {
        return Ok(());
    }
    let resolved = pickler.get_type().getattr(intern!(py, "reducer_override"))?;
    if !resolved.is(descriptor) {
        return Ok(());
    }
    let member = crate::objects::c_pickler_dispatch_table(py)?;
    let Some(table) = crate::byvalue::optional_attr_of_member(member, pickler)? else {
        return Ok(());
    };
    if table
        .cast::<DispatchTable>()
        .is_ok_and(|t| t.get().is_default_chain(py).unwrap_or(false))
    {
        member.call_method1(intern!(py, "__delete__"), (pickler,))?;
        state.owns_table.store(true, Ordering::Relaxed);
    }
    Ok(())
}
