//! `flightpickle.Pickler.dump` by the native writer, where the writer
//! writes what the C pickler would for that pickler, and the memo that the
//! two share across the dumps of one pickler.
//!
//! The writer stands in for a pickler that uses what the C pickler would
//! use for `flightpickle.Pickler` itself: our `reducer_override` (not one of
//! a subclass or of the instance), no `persistent_id`, our default dispatch
//! table, a memo in use (`fast` off), and a file and buffer callback given
//! to our `__init__`. Anything else is the C pickler's.
//!
//! The C pickler keeps its memo across dumps, so a later pickle may refer to
//! objects an earlier one memoized. The writer starts only from an empty
//! memo; what its dump memoized is kept in the pickler's state and handed
//! to the C pickler (its `memo` setter) only when the C pickler is about to
//! dump or the memo is read: a pickler dumped once, the usual case, never
//! pays for building the C pickler's memo.

use std::sync::MutexGuard;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;

use crate::dispatch::DispatchTable;
use crate::objects;
use crate::pickler::{self, MemoState, PicklerState};
use crate::writer::{self, FastPathDeclined};

/// Dumps `obj` as `pickler.dump(obj)` would, when the native writer may
/// stand in for the C pickler: true when done. False when the C pickler
/// must do it; its memo then holds what earlier native dumps memoized.
#[pyfunction]
pub(crate) fn dump_natively(pickler: &Bound<'_, PyAny>, obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    let state = pickler::state_of(pickler)?;
    let state = state.get();
    if let Some((proto, write, buffer_callback)) = native_output(pickler, state)? {
        match writer::dump_for_pickler(obj, proto, state, buffer_callback, write) {
            Ok(carried) => {
                if let Some(carried) = carried {
                    *memo_of(state) = MemoState::Carried(carried);
                }
                return Ok(true);
            }
            // Declined before writing anything: the C pickler starts afresh.
            Err(err) if err.is_instance_of::<FastPathDeclined>(pickler.py()) => {}
            Err(err) => return Err(err),
        }
    }
    hand_memo_over(pickler)?;
    Ok(false)
}

/// Gives the C pickler the memo of earlier native dumps, if any, before
/// it dumps or its memo is read; from then on the memo is the C pickler's.
#[pyfunction]
pub(crate) fn hand_memo_over(pickler: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = pickler.py();
    let state = pickler::state_of(pickler)?;
    let previous = std::mem::replace(&mut *memo_of(state.get()), MemoState::InCPickler);
    if let MemoState::Carried(carried) = previous {
        objects::c_pickler_memo(py)?.call_method1(intern!(py, "__set__"), (pickler, carried.as_c_memo(py)?))?;
    }
    Ok(())
}

/// Records that the C pickler's memo was cleared (`empty`) or replaced;
/// any memo a native dump left is dropped either way.
#[pyfunction]
pub(crate) fn memo_reset(pickler: &Bound<'_, PyAny>, empty: bool) -> PyResult<()> {
    let state = pickler::state_of(pickler)?;
    *memo_of(state.get()) = if empty { MemoState::Empty } else { MemoState::InCPickler };
    Ok(())
}

/// A native dump's protocol, the file's `write` and the buffer callback.
type NativeOutput<'py> = (u8, Bound<'py, PyAny>, Option<Bound<'py, PyAny>>);

/// The protocol, the file's `write` and the buffer callback for a native
/// dump by `pickler`; None when the C pickler must dump.
fn native_output<'py>(pickler: &Bound<'py, PyAny>, state: &PicklerState) -> PyResult<Option<NativeOutput<'py>>> {
    let py = pickler.py();
    let Some(output) = &state.output else {
        return Ok(None);
    };
    if !matches!(*memo_of(state), MemoState::Empty) || !c_pickler_would_defer(pickler, state)? {
        return Ok(None);
    }
    let buffer_callback = output
        .buffer_callback
        .as_ref()
        .map(|callback| callback.bind(py).clone());
    let declined = |err: &PyErr| err.is_instance_of::<FastPathDeclined>(py);
    let proto = match writer::writable_protocol(Some(state.protocol()), buffer_callback.is_some()) {
        Err(err) if declined(&err) => return Ok(None),
        other => other?,
    };
    let write = match writer::file_write(output.file.bind(py)) {
        Err(err) if declined(&err) => return Ok(None),
        other => other?,
    };
    Ok(Some((proto, write, buffer_callback)))
}

/// Whether the C pickler, dumping with `pickler`, would do nothing of its
/// own: `reducer_override` is ours, no `persistent_id`, a memo in use, and
/// the dispatch table our default one (or taken over by `reducer_override`).
fn c_pickler_would_defer(pickler: &Bound<'_, PyAny>, state: &PicklerState) -> PyResult<bool> {
    let py = pickler.py();
    if !writer::is_default_reducer_override(&pickler.get_type().getattr(intern!(py, "reducer_override"))?)
        || !finds_states_reducer_override(pickler, state)?
    {
        return Ok(false);
    }
    if member_value(objects::c_pickler_persistent_id(py)?, pickler)?.is_some() {
        return Ok(false);
    }
    let fast = member_value(objects::c_pickler_fast(py)?, pickler)?;
    if fast.is_none_or(|fast| fast.is_truthy().unwrap_or(true)) {
        return Ok(false);
    }
    match member_value(objects::c_pickler_dispatch_table(py)?, pickler)? {
        None => Ok(state.owns_table()),
        Some(table) => Ok(table
            .cast::<DispatchTable>()
            .is_ok_and(|table| table.get().is_default_chain(py).unwrap_or(false))),
    }
}

/// Whether `pickler.reducer_override` (the class's being our descriptor)
/// finds the state's own method: false when the instance has an attribute
/// of that name, which wins over a non-data descriptor. The lookup is the
/// one the C pickler makes at the start of each dump, and does what it does
/// (our descriptor may take the dispatch table over); reading the instance
/// `__dict__` instead would make one where there is none.
fn finds_states_reducer_override(pickler: &Bound<'_, PyAny>, state: &PicklerState) -> PyResult<bool> {
    let py = pickler.py();
    let found = pickler.getattr(intern!(py, "reducer_override"))?;
    // SAFETY: a type check on a live object; then, for a builtin method,
    // reads of its definition's name (a static C string) and of its owner
    // (borrowed, made strong at once).
    let owner = unsafe {
        let found = found.as_ptr();
        if ffi::PyCFunction_Check(found) == 0
            || std::ffi::CStr::from_ptr((*(*found.cast::<ffi::PyCFunctionObject>()).m_ml).ml_name)
                != c"reducer_override"
        {
            return Ok(false);
        }
        Bound::from_borrowed_ptr_or_opt(py, ffi::PyCFunction_GetSelf(found))
    };
    let is_states = owner.is_some_and(|owner| {
        owner
            .cast::<PicklerState>()
            .is_ok_and(|owner| std::ptr::eq(owner.get(), state))
    });
    Ok(is_states)
}

/// What the C pickler's own attribute `member` holds for `pickler`; None
/// when unset (its getter raises AttributeError).
fn member_value<'py>(member: &Bound<'py, PyAny>, pickler: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    crate::byvalue::optional_attr_of_member(member, pickler)
}

fn memo_of(state: &PicklerState) -> MutexGuard<'_, MemoState> {
    state.memo.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
