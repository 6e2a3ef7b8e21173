//! Objects that `object.__reduce_ex__` reduces: no reducer of ours or in
//! `copyreg`'s table, and a type that keeps `object`'s `__reduce_ex__`,
//! `__reduce__`, `__getstate__` and `__class__` and has no
//! `__getnewargs(_ex)__`. The default reduction would return
//! `(copyreg.__newobj__, (cls,), state, None, None)`; this writes what the
//! C pickler writes for that tuple (`cls`, `()`, NEWOBJ, memo, `state`,
//! BUILD) without the call, which imports `copyreg` and builds the tuple,
//! nor the checks of the tuple that the C pickler makes after it.
//!
//! `state` is made as `object.__getstate__` makes it: None or the
//! instance dict, and when slots hold values `(dict or None, slots)`.
//!
//! The checks are those of CPython 3.11's `object.__reduce_ex__` and
//! `object.__getstate__`; an object that fails one of them, and any object
//! on another Python, goes the old way (`__reduce_ex__` called), which also
//! raises that path's errors. The checks read the type only, or the
//! instance dict, so nothing runs twice when the old way is taken.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::exceptions::{PyAttributeError, PyRuntimeError};
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::Dumper;
use super::classes::Keys;
use super::slot_plans;
use crate::cpython::{_PyType_Lookup, plain_slot_offset, read_slot};
use crate::reducers::class::Pairs;
use crate::reducers::class_cache::Stamp;
use crate::writer::opcodes::*;
use crate::{objects, version};

/// Off only in tests, which compare this writer's bytes with the old way's.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the native writing of default-reduced objects on or off; returns
/// whether it was on. For tests that compare it with `__reduce_ex__`.
#[pyfunction]
pub(crate) fn set_native_default_reduce(enabled: bool) -> bool {
    ENABLED.swap(enabled, Ordering::Relaxed)
}

/// Whether the running Python is the one whose checks are copied here.
fn checks_apply(py: Python<'_>) -> bool {
    version::running(py) == (3, 11)
}

/// Whether `copyreg.__newobj__`, which the default reduction names and
/// the C pickler recognises by its `__name__`, is still the function
/// `copyreg` defines (as first seen, and so named), found where the
/// default reduction finds it: a replacement would be written as a call.
fn newobj_is_copyregs(py: Python<'_>) -> PyResult<bool> {
    // The module, its namespace, and whether its `__newobj__` was so named.
    static COPYREG: PyOnceLock<(Py<PyAny>, Py<PyDict>, bool)> = PyOnceLock::new();
    let original = objects::copyreg_newobj(py)?;
    let (module, namespace, named_so) = COPYREG.get_or_try_init(py, || {
        let module = py.import(intern!(py, "copyreg"))?;
        let name = original.getattr(intern!(py, "__name__"))?;
        let named_so = name.extract::<&str>().is_ok_and(|name| name == "__newobj__");
        Ok::<_, PyErr>((module.clone().into_any().unbind(), module.dict().unbind(), named_so))
    })?;
    let modules = objects::sys_modules(py);
    let namespace = namespace.bind(py);
    let versions = dict_versions(&modules, namespace);
    if versions.is_some() && KNOWN_NEWOBJ.try_with(Cell::get).ok().flatten() == versions {
        return Ok(true);
    }
    let in_sys_modules = modules.get_item(intern!(py, "copyreg"))?;
    if !*named_so || !in_sys_modules.is_some_and(|found| found.is(module)) {
        return Ok(false);
    }
    let current = namespace.get_item(intern!(py, "__newobj__"))?;
    let is_copyregs = current.is_some_and(|current| current.is(original));
    // Kept only if the lookups, which could have run a key's `__eq__`,
    // left both dicts as they found them.
    if is_copyregs && dict_versions(&modules, namespace) == versions {
        let _ = KNOWN_NEWOBJ.try_with(|known| known.set(versions));
    }
    Ok(is_copyregs)
}

/// The addresses and versions of `sys.modules` and `copyreg`'s namespace,
/// where the Python keeps dict versions (3.11; every change of a dict's
/// content gives it a new version from a counter that only grows).
type DictVersions = ((usize, u64), (usize, u64));

thread_local! {
    /// The dict versions at which `newobj_is_copyregs` last said yes: while
    /// both hold, neither `sys.modules["copyreg"]` nor `copyreg.__newobj__`
    /// can have changed, and the two lookups (~0.3k an object) are spared.
    static KNOWN_NEWOBJ: Cell<Option<DictVersions>> = const { Cell::new(None) };
}

fn dict_versions(modules: &Bound<'_, PyDict>, namespace: &Bound<'_, PyDict>) -> Option<DictVersions> {
    #[cfg(not(Py_3_12))]
    {
        let version = |dict: &Bound<'_, PyDict>| {
            // SAFETY: reading a field of a live dict.
            let tag = unsafe { (*dict.as_ptr().cast::<ffi::PyDictObject>()).ma_version_tag };
            (dict.as_ptr() as usize, tag)
        };
        Some((version(modules), version(namespace)))
    }
    #[cfg(Py_3_12)]
    {
        let _ = (modules, namespace);
        None
    }
}

impl<'py> Dumper<'_, 'py> {
    /// Writes `obj` as its default reduction would be written; false (and
    /// nothing written) when that reduction is not certain to be used.
    /// Asked only for an object whose type's MRO finds `object`'s own
    /// `__reduce__` (see `own_reduce.rs`, which looks it up for this route
    /// and the direct call both): most types with one of their own never
    /// get here.
    pub(super) fn save_default_reduced(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        let Some((slot_names, dict)) = default_reduced_parts(obj)? else {
            return Ok(false);
        };
        let state = state_of(obj, slot_names, dict)?;
        self.save(obj.get_type().as_any())?;
        self.save(PyTuple::empty(self.py).as_any())?;
        self.out.write(&[NEWOBJ])?;
        if self.memoize_made(obj)? {
            return Ok(true);
        }
        match state {
            State::Nothing => return Ok(true),
            State::Made(state) => self.save(&state)?,
            State::WithSlots { dict, slots } => self.write_state_with_slots(dict, &slots)?,
        }
        self.out.write(&[BUILD])?;
        Ok(true)
    }

    /// `(dict or None, {slot: value})` as the C pickler writes that tuple,
    /// without making the tuple or the slots dict: both would be made for
    /// this dump only, so each gets the memo index the C pickler would give
    /// it, with no object behind it (making and walking them cost a
    /// dataclass `Field`, eleven slots, ~3k).
    fn write_state_with_slots(&mut self, dict: Option<Bound<'py, PyAny>>, slots: &Pairs<'py>) -> PyResult<()> {
        let py = self.py;
        self.save(&dict.unwrap_or_else(|| py.None().into_bound(py)))?;
        // Nested as the dict would have been, for the recursion checks.
        self.enter()?;
        let written = self.write_fresh_dict(slots, Keys::SlotNames, None);
        self.leave();
        written?;
        self.close_fresh_tuple(2)
    }

    /// A slot name as `save` writes it. Where strings go by text, the name
    /// goes by text too: the objects of one class share their class's
    /// `__slotnames__`, so a dataclass's second and third `Field` meet the
    /// same eleven names, which the memo then finds by their address
    /// (`str_addresses.rs`) without hashing them again. A code object's
    /// recording, which keeps its own account of the strings it writes,
    /// takes `save`.
    pub(super) fn save_slot_name(&mut self, name: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.names_by_text == 0 || self.recording.is_some() || !name.is_exact_instance_of::<PyString>() {
            return self.save(name);
        }
        self.save_str(name, true)?;
        self.out.opcode_boundary()
    }
}

/// The state `object.__getstate__` would make, as far as it is made here.
enum State<'py> {
    /// None: no BUILD.
    Nothing,
    /// The instance dict.
    Made(Bound<'py, PyAny>),
    /// `(dict or None, slots)`, to be written without being made.
    WithSlots {
        dict: Option<Bound<'py, PyAny>>,
        slots: Pairs<'py>,
    },
}

/// The type's `__slotnames__` (None or a list) and the instance dict (if
/// the type has one).
type StateParts<'py> = (Bound<'py, PyAny>, Option<Bound<'py, PyDict>>);

/// What the state is made of, when the default reduction applies; None
/// otherwise.
fn default_reduced_parts<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Option<StateParts<'py>>> {
    let py = obj.py();
    if !ENABLED.load(Ordering::Relaxed) || !checks_apply(py) {
        return Ok(None);
    }
    let kind = obj.get_type();
    let kind_ptr = kind.as_type_ptr();
    // Slot functions compared by address: CPython's own exported ones, one
    // address each in the process (ELF makes imported addresses canonical).
    let address = |slot: Option<ffi::getattrofunc>| slot.map(|f| f as usize);
    // SAFETY: reading the slots of live type objects.
    let plain = unsafe {
        address((*kind_ptr).tp_getattro) == address(Some(ffi::PyObject_GenericGetAttr))
            && address((*ffi::Py_TYPE(kind.as_ptr())).tp_getattro) == address(ffi::PyType_Type.tp_getattro)
            && (*kind_ptr).tp_new.is_some()
            && (*kind_ptr).tp_itemsize == 0
            && ffi::PyList_Check(obj.as_ptr()) == 0
            && ffi::PyDict_Check(obj.as_ptr()) == 0
    };
    // The type's checks first: they cost less than `copyreg`'s.
    if !plain || !keeps_objects_methods_known(&kind)? || !newobj_is_copyregs(py)? {
        return Ok(None);
    }
    let Some(slot_names) = cached_slot_names(&kind)? else {
        return Ok(None);
    };
    if !instance_layout_is_known(&kind, &slot_names) {
        return Ok(None);
    }
    // SAFETY: reading a slot of a live type object.
    let dict = if unsafe { (*kind_ptr).tp_dictoffset } != 0 {
        // SAFETY: the type has a dict slot; a new reference or an error.
        let dict = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()))?
        };
        let dict = dict.cast_into::<PyDict>()?;
        // Instance attributes would be found before the type's methods.
        for name in [intern!(py, "__reduce_ex__"), intern!(py, "__getstate__")] {
            if dict.contains(name)? {
                return Ok(None);
            }
        }
        Some(dict)
    } else {
        None
    };
    Ok(Some((slot_names, dict)))
}

/// Types found lately to keep `object`'s methods, per thread, each with
/// its stamp then. A stamp that still holds means that neither the type
/// nor its metaclass has changed since (see `class_cache.rs`), so the MRO
/// lookups of `keeps_objects_methods` would find what they found: eleven
/// lookups, ~0.5k an object, where a dataclass dump meets the same few
/// types (its `Field`s) again and again. A type is kept by address only:
/// another type made at the same address later has another version tag.
struct KnownKeepers {
    entries: [Option<(usize, Stamp)>; KNOWN_KEEPERS],
    /// The entry to replace next.
    next: usize,
}

const KNOWN_KEEPERS: usize = 8;

thread_local! {
    static KNOWN: RefCell<KnownKeepers> = const {
        RefCell::new(KnownKeepers {
            entries: [None; KNOWN_KEEPERS],
            next: 0,
        })
    };
}

/// `keeps_objects_methods`, answered from the types known to keep them
/// while their stamps hold.
fn keeps_objects_methods_known(kind: &Bound<'_, PyType>) -> PyResult<bool> {
    let address = kind.as_ptr() as usize;
    let stamp = Stamp::of(kind.as_any());
    if let Some(stamp) = stamp {
        let known = KNOWN
            .try_with(|known| {
                let known = known.borrow();
                known.entries.contains(&Some((address, stamp)))
            })
            .unwrap_or(false);
        if known {
            return Ok(true);
        }
    }
    let keeps = keeps_objects_methods(kind)?;
    if keeps && let Some(stamp) = stamp {
        // The lookups run no Python code: the stamp taken before them
        // still describes the type they read.
        let _ = KNOWN.try_with(|known| {
            let mut known = known.borrow_mut();
            let at = known.next;
            known.entries[at] = Some((address, stamp));
            known.next = (at + 1) % KNOWN_KEEPERS;
        });
    }
    Ok(keeps)
}

/// Whether `kind` finds `object`'s own `__reduce_ex__`, `__reduce__`,
/// `__getstate__` and `__class__` on its MRO, no `__getnewargs_ex__` or
/// `__getnewargs__`, and its metaclass no data descriptor `__reduce__`
/// (which `type(obj).__reduce__` would find first).
fn keeps_objects_methods(kind: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = kind.py();
    let object = &raw mut ffi::PyBaseObject_Type;
    let kind_ptr = kind.as_type_ptr();
    let inherited = [
        intern!(py, "__reduce_ex__"),
        intern!(py, "__reduce__"),
        intern!(py, "__getstate__"),
        intern!(py, "__class__"),
    ];
    let absent = [intern!(py, "__getnewargs_ex__"), intern!(py, "__getnewargs__")];
    // SAFETY: MRO lookups on live types with str names; borrowed results
    // compared by address only.
    unsafe {
        for name in inherited {
            let found = _PyType_Lookup(kind_ptr, name.as_ptr());
            if found.is_null() || found != _PyType_Lookup(object, name.as_ptr()) {
                return Ok(false);
            }
        }
        for name in absent {
            if !_PyType_Lookup(kind_ptr, name.as_ptr()).is_null() {
                return Ok(false);
            }
        }
        let meta_reduce = _PyType_Lookup(ffi::Py_TYPE(kind.as_ptr()), intern!(py, "__reduce__").as_ptr());
        if !meta_reduce.is_null() && (*ffi::Py_TYPE(meta_reduce)).tp_descr_set.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `object.__getstate__`'s check that the instance holds nothing but its
/// dict, weak references and named slots (its basic size adds up); a type
/// that fails it gets that method's TypeError, from the old way.
fn instance_layout_is_known(kind: &Bound<'_, PyType>, slot_names: &Bound<'_, PyAny>) -> bool {
    let pointer = std::mem::size_of::<*mut ffi::PyObject>() as isize;
    let kind_ptr = kind.as_type_ptr();
    // SAFETY: reading the slots of live type objects.
    let (basic_size, dict_offset, flags, weaklist_offset, object_size) = unsafe {
        (
            (*kind_ptr).tp_basicsize,
            (*kind_ptr).tp_dictoffset,
            (*kind_ptr).tp_flags,
            (*kind_ptr).tp_weaklistoffset,
            ffi::PyBaseObject_Type.tp_basicsize,
        )
    };
    let mut expected = object_size;
    if dict_offset != 0 && flags & ffi::Py_TPFLAGS_MANAGED_DICT == 0 {
        expected += pointer;
    }
    if weaklist_offset != 0 {
        expected += pointer;
    }
    if let Ok(list) = slot_names.cast::<PyList>() {
        expected += pointer * list.len() as isize;
    }
    basic_size <= expected
}

/// The type's own `__slotnames__`, None or a list, as `copyreg._slotnames`
/// caches it there; None when it is not cached yet (the old way computes
/// and caches it) or is neither (the old way raises).
fn cached_slot_names<'py>(kind: &Bound<'py, PyType>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = kind.py();
    // SAFETY: a live type's own namespace, a dict; borrowed into a new reference.
    let own = unsafe {
        let dict = (*kind.as_type_ptr()).tp_dict;
        if dict.is_null() {
            return Ok(None);
        }
        Bound::from_borrowed_ptr(py, dict).cast_into_unchecked::<PyDict>()
    };
    Ok(own
        .get_item(intern!(py, "__slotnames__"))?
        .filter(|names| names.is_none() || names.is_instance_of::<PyList>()))
}

/// What `object.__getstate__` returns: None or the instance dict, paired
/// with the slots that hold a value, if any do (in the order a dict of
/// them would keep, one entry per name).
fn state_of<'py>(
    obj: &Bound<'py, PyAny>,
    slot_names: Bound<'py, PyAny>,
    dict: Option<Bound<'py, PyDict>>,
) -> PyResult<State<'py>> {
    let dict = dict.filter(|dict| !dict.is_empty()).map(Bound::into_any);
    let just_dict = |dict: Option<Bound<'py, PyAny>>| dict.map_or(State::Nothing, State::Made);
    let Ok(slot_names) = slot_names.cast_into::<PyList>() else {
        return Ok(just_dict(dict));
    };
    let with_slots = |dict: Option<Bound<'py, PyAny>>, slots: Pairs<'py>| {
        if slots.is_empty() {
            just_dict(dict)
        } else {
            State::WithSlots { dict, slots }
        }
    };
    if let Some(slots) = slot_plans::slots_by_plan(obj, &slot_names) {
        return Ok(with_slots(dict, slots));
    }
    let count = slot_names.len();
    let mut slots: Pairs<'py> = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    let mut all_plain = true;
    let mut index = 0;
    while index < count {
        let name = slot_names.get_item(index)?;
        let offset = plain_slot_offset(obj, &name);
        all_plain &= offset.is_some();
        if let Some(value) = slot_value(obj, &name, offset)? {
            set_slot(&mut slots, &mut hashes, name, value)?;
        }
        // The list is the class's own, which a getter could change.
        if slot_names.len() != count {
            return Err(PyRuntimeError::new_err("__slotsname__ changed size during iteration"));
        }
        index += 1;
    }
    if all_plain {
        // No getter ran: the next object of this type may follow a plan.
        slot_plans::remember(obj, &slot_names);
    }
    Ok(with_slots(dict, slots))
}

/// `slots[name] = value` as a dict would do it: a name already there keeps
/// its place and takes the new value. Names are told apart as a dict tells
/// them apart: identity, then the hash, then equality (`hashes` holds each
/// name's hash, in step with `slots`).
fn set_slot<'py>(
    slots: &mut Pairs<'py>,
    hashes: &mut Vec<isize>,
    name: Bound<'py, PyAny>,
    value: Bound<'py, PyAny>,
) -> PyResult<()> {
    let hash = hash_of(&name)?;
    for ((existing, old_value), existing_hash) in slots.iter_mut().zip(hashes.iter()) {
        if existing.is(&name) || (*existing_hash == hash && existing.eq(&name)?) {
            *old_value = value;
            return Ok(());
        }
    }
    slots.push((name, value));
    hashes.push(hash);
    Ok(())
}

/// `hash(name)`; an exact str's is read where the str keeps it once made
/// (a slot name used as a key of its class's dict has made it), which
/// spares a call per slot.
fn hash_of(name: &Bound<'_, PyAny>) -> PyResult<isize> {
    if name.is_exact_instance_of::<PyString>() {
        // SAFETY: an exact str is laid out as a `PyASCIIObject` first.
        let kept = unsafe { (*name.as_ptr().cast::<ffi::PyASCIIObject>()).hash };
        if kept != -1 {
            return Ok(kept);
        }
    }
    name.hash()
}

/// What `getattr(obj, name)` gives for a slot: read at the slot's offset
/// when `name` leads to a plain slot (`offset`, from `plain_slot_offset`),
/// otherwise by `getattr`.
fn slot_value<'py>(
    obj: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
    offset: Option<isize>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match offset {
        // SAFETY: the offset `plain_slot_offset` found for `obj`.
        Some(offset) => Ok(unsafe { read_slot(obj, offset) }),
        None => optional_attr(obj, name),
    }
}

/// `getattr(obj, name)` for any `name` (a slot name need not be a str:
/// `getattr` then raises its TypeError), None on AttributeError.
fn optional_attr<'py>(obj: &Bound<'py, PyAny>, name: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = obj.py();
    // SAFETY: live objects; a new reference or an error.
    match unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyObject_GetAttr(obj.as_ptr(), name.as_ptr())) } {
        Ok(value) => Ok(Some(value)),
        Err(err) if err.is_instance_of::<PyAttributeError>(py) => Ok(None),
        Err(err) => Err(err),
    }
}
