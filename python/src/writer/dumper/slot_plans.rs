//! Where a default-reduced object's slots are read, kept per type.
//!
//! `state_of` finds, for each of a type's slot names, the descriptor the
//! MRO holds under it (an MRO lookup and its checks, ~60 instructions a
//! slot), then adds the slot as a dict would (a hash and a pass over the
//! slots already added). The objects of one type repeat all of it: a
//! dataclass's `Field`s have eleven slots each. What it found depends only
//! on the type, its MRO and the names; so, for a type whose every slot
//! name is a distinct exact str read at a plain slot offset, the offsets
//! are kept with the type's stamp (see `class_cache.rs`: the type's and its
//! metaclass's version tags and its dict's version, which a change to the
//! type, a base or the metaclass moves) and the names themselves.
//!
//! A plan is used only while that stamp holds and the slot-name list holds
//! the very names it was made with, in order (the plan holds them, so no
//! other str can come to their addresses). The names being distinct, each
//! slot read is then one entry, in the list's order, as `state_of` adds
//! them; and reading a plain slot runs no Python code, so nothing can
//! change the type or the list while the plan is followed.

use std::cell::RefCell;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

use crate::cpython::{plain_slot_offset, read_slot};
use crate::reducers::class::Pairs;
use crate::reducers::class_cache::Stamp;

/// Types whose plans a thread keeps; the oldest makes room for a new one.
const PLANS: usize = 8;

struct SlotPlan {
    kind: usize,
    stamp: Stamp,
    names: Vec<Py<PyAny>>,
    /// Each name's slot offset in the type's instances.
    offsets: Vec<isize>,
}

#[derive(Default)]
struct Plans {
    entries: Vec<SlotPlan>,
    /// The entry to replace when the table is full.
    next_victim: usize,
}

thread_local! {
    static KNOWN: RefCell<Plans> = RefCell::default();
}

/// The slots of `obj` that hold a value, as `state_of` would pair them,
/// read by its type's plan; None when no plan holds for its type and
/// `names` (the type's `__slotnames__`).
pub(super) fn slots_by_plan<'py>(obj: &Bound<'py, PyAny>, names: &Bound<'py, PyList>) -> Option<Pairs<'py>> {
    let kind = obj.get_type();
    let stamp = Stamp::of(kind.as_any())?;
    let address = kind.as_ptr() as usize;
    KNOWN
        .try_with(|plans| {
            let plans = plans.try_borrow().ok()?;
            let plan = plans
                .entries
                .iter()
                .find(|plan| plan.kind == address && plan.stamp == stamp)?;
            holds_for(plan, names).then(|| read_slots(obj, plan))
        })
        .ok()
        .flatten()
}

/// Whether `names` is the list of the plan's names, in order.
fn holds_for(plan: &SlotPlan, names: &Bound<'_, PyList>) -> bool {
    if names.len() != plan.names.len() {
        return false;
    }
    plan.names.iter().enumerate().all(|(index, name)| {
        // SAFETY: `index` is within the list; the borrowed item is
        // compared by address only.
        unsafe { ffi::PyList_GET_ITEM(names.as_ptr(), index as ffi::Py_ssize_t) == name.as_ptr() }
    })
}

fn read_slots<'py>(obj: &Bound<'py, PyAny>, plan: &SlotPlan) -> Pairs<'py> {
    let py = obj.py();
    let mut slots = Vec::with_capacity(plan.names.len());
    for (name, &offset) in plan.names.iter().zip(&plan.offsets) {
        // SAFETY: `plain_slot_offset` found this offset for an object slot
        // of this type's instances under the same stamp.
        let value = unsafe { read_slot(obj, offset) };
        if let Some(value) = value {
            slots.push((name.bind(py).clone(), value));
        }
    }
    slots
}

/// Keeps a plan for `obj`'s type and its slot names `names`, if every name
/// is an exact str read at a plain slot offset and no two are equal.
pub(super) fn remember(obj: &Bound<'_, PyAny>, names: &Bound<'_, PyList>) {
    let kind = obj.get_type();
    let Some(stamp) = Stamp::of(kind.as_any()) else {
        return;
    };
    let mut held: Vec<Py<PyAny>> = Vec::with_capacity(names.len());
    let mut offsets = Vec::with_capacity(names.len());
    for name in names.iter() {
        if !name.is_exact_instance_of::<PyString>() {
            return;
        }
        let Some(offset) = plain_slot_offset(obj, &name) else {
            return;
        };
        // Comparing exact strs runs no Python code.
        for earlier in &held {
            if earlier.bind(obj.py()).eq(&name).unwrap_or(true) {
                return;
            }
        }
        held.push(name.unbind());
        offsets.push(offset);
    }
    let plan = SlotPlan {
        kind: kind.as_ptr() as usize,
        stamp,
        names: held,
        offsets,
    };
    let _ = KNOWN.try_with(|plans| {
        let Ok(mut plans) = plans.try_borrow_mut() else {
            return;
        };
        keep(&mut plans, plan);
    });
}

fn keep(plans: &mut Plans, plan: SlotPlan) {
    if let Some(same_type) = plans.entries.iter_mut().find(|entry| entry.kind == plan.kind) {
        *same_type = plan;
    } else if plans.entries.len() < PLANS {
        plans.entries.push(plan);
    } else {
        let victim = plans.next_victim;
        plans.entries[victim] = plan;
        plans.next_victim = (victim + 1) % PLANS;
    }
}
