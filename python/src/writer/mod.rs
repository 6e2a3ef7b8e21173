//! The native writer behind module-level `dumps` and `dump`, and behind
//! `Pickler.dump` where it applies (see `pickler_dump.rs`): it emits the
//! pickle opcodes itself instead of handing reduce tuples to the C pickler,
//! so a call costs about what plain `pickle.dumps` costs, and functions and
//! classes skip the C pickler's per-name imports.
//!
//! It declines (raises `FastPathDeclined`, and the Python side uses
//! `flightpickle.Pickler`) whatever it does not do exactly as that pickler
//! would: protocols below 2, a `Pickler` class whose reducers or dispatch
//! table were replaced, nesting deeper than `dumper::MAX_DEPTH`.

mod dumper;
mod generations;
mod globals;
mod id_table;
mod memo;
mod opcodes;
mod output;
mod str_addresses;
mod text_table;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, Ordering};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PySystemError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyType};

use crate::dispatch::DispatchTable;
use crate::pickler::PicklerState;
use crate::target::{self, Target};
use dumper::Dumper;
pub(crate) use dumper::{set_native_default_reduce, set_own_reduce_calls};
pub(crate) use memo::CarriedMemo;
use memo::Memo;
use output::Output;

create_exception!(
    _native,
    FastPathDeclined,
    PyException,
    "The native writer leaves this dump to flightpickle.Pickler."
);

/// `flightpickle.Pickler` and the class attributes it was defined with.
struct DefaultPickler {
    class: Py<PyType>,
    reducer_override: Py<PyAny>,
    dispatch_table: Py<PyAny>,
}

static DEFAULT_PICKLER: PyOnceLock<DefaultPickler> = PyOnceLock::new();

/// Called once by `flightpickle/__init__.py` with its `Pickler` class: the
/// writer stands in for it only while its class attributes are unchanged.
#[pyfunction]
pub(crate) fn use_pickler_class(class: &Bound<'_, PyType>) -> PyResult<()> {
    let py = class.py();
    let default = DefaultPickler {
        class: class.clone().unbind(),
        reducer_override: class.getattr(intern!(py, "reducer_override"))?.unbind(),
        dispatch_table: class.getattr(intern!(py, "dispatch_table"))?.unbind(),
    };
    let _ = DEFAULT_PICKLER.set(py, default);
    Ok(())
}

/// `dumps(obj, protocol, buffer_callback, target=target)` when `file` is
/// None, else `dump(obj, file, ...)` (returning None).
#[pyfunction]
#[pyo3(signature = (obj, protocol, buffer_callback, target, file = None))]
pub(crate) fn fast_dump<'py>(
    obj: &Bound<'py, PyAny>,
    protocol: Option<&Bound<'py, PyAny>>,
    buffer_callback: Option<Bound<'py, PyAny>>,
    target: Option<&str>,
    file: Option<&Bound<'py, PyAny>>,
) -> PyResult<Option<Bound<'py, PyBytes>>> {
    let py = obj.py();
    let requested = match protocol {
        None => Some(5),
        Some(protocol) => protocol.extract::<i32>().ok(),
    };
    let buffer_callback = buffer_callback.filter(|callback| !callback.is_none());
    let proto = writable_protocol(requested, buffer_callback.is_some())?;
    if !pickler_is_default(py)? {
        return Err(decline("flightpickle.Pickler was changed"));
    }
    let sink = match file {
        None => None,
        Some(file) => Some(file_write(file)?),
    };
    let state = PicklerState::new(py, i32::from(proto), target)?;
    write_pickle(obj, proto, &state, true, buffer_callback, sink).map(|(bytes, _memo)| bytes)
}

/// The protocol to write for `requested` (None: not an int), or the
/// writer's refusal: protocols below 2, and a buffer callback below 5.
pub(crate) fn writable_protocol(requested: Option<i32>, with_buffer_callback: bool) -> PyResult<u8> {
    let proto = requested
        .and_then(|p| u8::try_from(p).ok())
        .filter(|p| (2..=5).contains(p))
        .ok_or_else(|| decline("protocol below 2 or not an int"))?;
    if with_buffer_callback && proto < 5 {
        return Err(decline("buffer_callback below protocol 5"));
    }
    Ok(proto)
}

/// The file's bound `write`, which the writer calls as the C pickler does.
pub(crate) fn file_write<'py>(file: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    crate::byvalue::optional_attr(file, intern!(file.py(), "write"))?.ok_or_else(|| decline("file has no write method"))
}

/// `Pickler.dump(obj)` by this writer, with the pickler's own state, into
/// its file's `write`; returns what the pickle left in the memo.
pub(crate) fn dump_for_pickler<'py>(
    obj: &Bound<'py, PyAny>,
    proto: u8,
    state: &PicklerState,
    buffer_callback: Option<Bound<'py, PyAny>>,
    write: Bound<'py, PyAny>,
) -> PyResult<Option<CarriedMemo>> {
    let (_, memo) = write_pickle(obj, proto, state, false, buffer_callback, Some(write))?;
    Ok(memo.carry())
}

/// The pickle of `obj`, as bytes or (with a `sink`) written through it,
/// and the memo it ended with. `state_of_this_dump`: the state was made
/// for this dump and is dropped after it (a pickler's lives on).
fn write_pickle<'py>(
    obj: &Bound<'py, PyAny>,
    proto: u8,
    state: &PicklerState,
    state_of_this_dump: bool,
    buffer_callback: Option<Bound<'py, PyAny>>,
    sink: Option<Bound<'py, PyAny>>,
) -> PyResult<(Option<Bound<'py, PyBytes>>, Memo<'py>)> {
    let py = obj.py();
    let _active = ActiveTarget::enter(state.reconstructors().target);
    let writing_to_file = sink.is_some();
    let output = Output::new(py, sink)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut dumper = Dumper::new(py, proto, state, buffer_callback, output);
        if state_of_this_dump {
            dumper = dumper.one_dump_only();
        }
        let result = dumper.dump(obj);
        Ok::<_, PyErr>((result, dumper.into_parts()))
    }));
    let (result, (out, memo)) = match outcome {
        Ok(Ok(done)) => done,
        Ok(Err(err)) => return Err(err),
        Err(panic) => return Err(internal_error(panic)),
    };
    if let Err(err) = result {
        // Part of the pickle is in the file already: no second attempt.
        if out.drained && err.is_instance_of::<FastPathDeclined>(py) {
            return Err(crate::objects::new_pickling_error(
                py,
                "Could not pickle object as excessively deep recursion required.".into(),
            ));
        }
        return Err(err);
    }
    if writing_to_file {
        out.finish_to_sink()?;
        Ok((None, memo))
    } else {
        Ok((Some(out.into_bytes()?), memo))
    }
}

/// The `tp_version_tag` that `Pickler` had when its class attributes were
/// last found to be the defaults (0: none yet).
static UNCHANGED_AT_TAG: AtomicU32 = AtomicU32::new(0);

fn pickler_is_default(py: Python<'_>) -> PyResult<bool> {
    let Some(default) = DEFAULT_PICKLER.get(py) else {
        return Ok(false);
    };
    let table = default.dispatch_table.bind(py).cast::<DispatchTable>()?;
    // Setting or deleting a class attribute resets the type's version tag
    // (to 0, and a new tag is never an old one): while the tag is the one
    // seen at the last full check, the class dict is as it was then.
    // SAFETY: a live type object.
    let tag = unsafe { (*default.class.bind(py).as_type_ptr()).tp_version_tag };
    if tag != 0 && tag == UNCHANGED_AT_TAG.load(Ordering::Relaxed) {
        return table.get().is_default_chain(py);
    }
    let unchanged = class_attributes_are_default(py, default)?;
    UNCHANGED_AT_TAG.store(if unchanged { tag } else { 0 }, Ordering::Relaxed);
    Ok(unchanged && table.get().is_default_chain(py)?)
}

/// Whether `found` is `flightpickle.Pickler`'s own `reducer_override`.
pub(crate) fn is_default_reducer_override(found: &Bound<'_, PyAny>) -> bool {
    DEFAULT_PICKLER
        .get(found.py())
        .is_some_and(|default| found.is(default.reducer_override.bind(found.py())))
}

fn class_attributes_are_default(py: Python<'_>, default: &DefaultPickler) -> PyResult<bool> {
    // SAFETY: a live heap type; its `tp_dict` is a dict it owns.
    let class_dict = unsafe {
        Bound::from_borrowed_ptr(py, (*default.class.bind(py).as_type_ptr()).tp_dict).cast_into_unchecked::<PyDict>()
    };
    let own = |name| class_dict.get_item(name).ok().flatten();
    let unchanged = |name, original: &Py<PyAny>| own(name).is_some_and(|value| value.is(original.bind(py)));
    Ok(unchanged(intern!(py, "reducer_override"), &default.reducer_override)
        && unchanged(intern!(py, "dispatch_table"), &default.dispatch_table)
        && own(intern!(py, "persistent_id")).is_none())
}

fn decline(why: &str) -> PyErr {
    FastPathDeclined::new_err(why.to_owned())
}

/// A panic in the writer, as an exception (it never unwinds into Python).
fn internal_error(panic: Box<dyn std::any::Any + Send>) -> PyErr {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    PySystemError::new_err(format!("flightpickle's writer failed internally: {detail}"))
}

/// Makes a target the one table reducers see for the length of a dump.
struct ActiveTarget(Option<Target>);

impl ActiveTarget {
    fn enter(target: Target) -> Self {
        Self(target::activate(target))
    }
}

impl Drop for ActiveTarget {
    fn drop(&mut self) {
        target::restore(self.0);
    }
}
