//! Classes. Importable ones travel by reference (`NotImplemented` lets the
//! C pickler write the global); the few builtin types without an importable
//! name get a small call; the rest, by value: a skeleton made by the
//! metaclass, then the class body as state. Enums get their members up
//! front, because the enum metaclass must see them when it makes the class.
//!
//! What a class by value is made of is read once into a `ByValue`: the
//! reducer turns it into a reduce tuple for the C pickler, and the native
//! writer (`writer/dumper/classes.rs`) writes it as it stands, with the
//! same bytes, so neither the body dict nor the tuples are built for it.

use std::ffi::CStr;

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

use super::class_cache::{self, Known, KnownMembers, Stamp};
use super::{call, call_then_set};
use crate::pickler::PicklerState;
use crate::target::Target;
use crate::{byvalue, class_attrs, objects, registry, static_type_names, tracker, version};

/// Enum bookkeeping that the enum metaclass rebuilds from the members.
const ENUM_INTERNALS: [&str; 5] = [
    "_generate_next_value_",
    "_member_names_",
    "_member_map_",
    "_member_type_",
    "_value2member_map_",
];

/// An ABC's caches, which describe the pickling process, not the class,
/// and its registry (`_abc_impl`), which travels apart (`abc_registry`).
const ABC_INTERNALS: [&str; 4] = [
    "_abc_impl",
    "_abc_cache",
    "_abc_negative_cache",
    "_abc_negative_cache_version",
];

/// Never part of a body: Python makes these again for the new class.
const ALWAYS_RECREATED: [&str; 2] = ["__weakref__", "__dict__"];

/// (name, value) pairs, in the order they are written.
pub(crate) type Pairs<'py> = Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>;

pub(crate) fn reduce<'py>(pickler: &PicklerState, class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match reduce_unless_by_value(pickler, class)? {
        Some(reduced) => Ok(reduced),
        None => ByValue::read(class, pickler.reconstructors().target == Target::Native)?.into_reduced(pickler),
    }
}

/// What `reduce` returns for a class that does not travel by value (a
/// small call, or `NotImplemented` for a global); None for one that does.
pub(crate) fn reduce_unless_by_value<'py>(
    pickler: &PicklerState,
    class: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = class.py();
    Ok(match travel(pickler, class)? {
        Travel::Reduced(reduced) => Some(reduced),
        Travel::ByName(_) => Some(py.NotImplemented().into_bound(py)),
        Travel::ByValue => None,
    })
}

/// How a class travels.
pub(crate) enum Travel<'py> {
    /// As a small call (a singleton's type, a builtin type without a name).
    Reduced(Bound<'py, PyAny>),
    /// As a global; with where it was found when that was looked up (a
    /// `builtins` type is known by its name alone).
    ByName(Option<byvalue::Reference<'py>>),
    ByValue,
}

pub(crate) fn travel<'py>(pickler: &PicklerState, class: &Bound<'py, PyAny>) -> PyResult<Travel<'py>> {
    travel_unless(pickler, class, registry::is_registered)
}

/// `travel`, with the registry asked through `registered` (the native
/// writer asks it once for consecutive classes of one module in a dump).
pub(crate) fn travel_unless<'py>(
    pickler: &PicklerState,
    class: &Bound<'py, PyAny>,
    registered: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<bool>,
) -> PyResult<Travel<'py>> {
    let py = class.py();
    let names = pickler.reconstructors();
    if let Some(singleton) = singleton_of(class)? {
        return call(py.get_type::<PyType>().as_any(), (singleton,)).map(Travel::Reduced);
    }
    if let Some(name) = builtin_type_names(py)?.get_item(class)? {
        return call(names.builtin_type.bind(py), (name,)).map(Travel::Reduced);
    }
    if builtin_by_name(class)? {
        return Ok(Travel::ByName(None));
    }
    Ok(match byvalue::reference_unless(class, registered)? {
        Some(reference) => Travel::ByName(Some(reference)),
        None => Travel::ByValue,
    })
}

/// How the skeleton of a class by value is made.
pub(crate) enum Skeleton<'py> {
    /// `make_skeleton_class(metaclass, name, bases, type_kwargs, tracker_id, None)`.
    Class {
        metaclass: Bound<'py, PyAny>,
        name: Bound<'py, PyAny>,
        bases: Bound<'py, PyAny>,
        type_kwargs: Pairs<'py>,
        tracker_id: Bound<'py, PyAny>,
    },
    /// `make_skeleton_enum(bases, name, qualname, members, module, tracker_id, None)`.
    Enum {
        bases: Bound<'py, PyAny>,
        name: Bound<'py, PyAny>,
        qualname: Bound<'py, PyAny>,
        members: Pairs<'py>,
        module: Bound<'py, PyAny>,
        tracker_id: Bound<'py, PyAny>,
    },
}

/// A class that travels by value, as read from the type: its skeleton's
/// arguments, and its body (sorted by name, values not yet made stable).
pub(crate) struct ByValue<'py> {
    pub(crate) skeleton: Skeleton<'py>,
    pub(crate) body: Pairs<'py>,
    /// An ABC's `_abc_impl`, last in the body: the list of its virtual
    /// subclasses, under the interned name (not a fresh copy), as always.
    pub(crate) abc_registry: Option<Bound<'py, PyAny>>,
    /// Filled by BUILD with `(None, body)` (native target) rather than by
    /// `class_setstate(cls, (body, {}))`.
    pub(crate) fills_by_build: bool,
}

impl<'py> ByValue<'py> {
    /// `dense` (the native target) writes None for the metaclass `type` and
    /// no bases for `(object,)`, and lets BUILD fill what it can.
    ///
    /// What was decided about the class's namespace is kept while the class
    /// cannot have changed (`class_cache`), and read again from there.
    pub(crate) fn read(class: &Bound<'py, PyAny>, dense: bool) -> PyResult<Self> {
        let stamp = Stamp::of(class);
        if let Some(stamp) = &stamp
            && let Some(known) = class_cache::lookup(class, dense, stamp)
            && let Some(shape) = Self::read_known(class, dense, &known, stamp)?
        {
            return Ok(shape);
        }
        let (shape, known) = Self::read_afresh(class, dense)?;
        // Kept only if the reading (which may run Python code) left the
        // class as it found it.
        if let (Some(stamp), Some(known)) = (stamp, known)
            && Stamp::of(class) == Some(stamp)
        {
            class_cache::store(class, dense, stamp, known);
        }
        Ok(shape)
    }

    /// The class read through what was kept for it; None when what the
    /// stamps do not cover (an enum's member names) no longer matches, or
    /// the class changed while its members were read.
    fn read_known(class: &Bound<'py, PyAny>, dense: bool, known: &Known, stamp: &Stamp) -> PyResult<Option<Self>> {
        let members = match &known.enum_members {
            Some(kept) => {
                let members = if kept.from_tables {
                    members_from_tables(class)?
                } else {
                    members_by_iterating(class)?
                };
                let same = members.len() == kept.names.len()
                    && members.iter().zip(&kept.names).all(|((name, _), kept)| name.is(kept));
                if !same {
                    return Ok(None);
                }
                Some(members)
            }
            None => None,
        };
        if Stamp::of(class).as_ref() != Some(stamp) {
            return Ok(None);
        }
        let Some(body) = class_cache::entries_at(own_dict(class)?.as_any(), &known.body_positions) else {
            return Ok(None);
        };
        let abc_registry = if known.abc { Some(abc_registry(class)?) } else { None };
        let skeleton = match members {
            Some(members) => enum_skeleton(class, members)?,
            None => class_skeleton(class, dense)?,
        };
        Ok(Some(Self {
            skeleton,
            body,
            abc_registry,
            fills_by_build: known.fills_by_build,
        }))
    }

    /// The class read from its attributes, with what can be kept of it
    /// (None for a class whose body is not filtered by its namespace alone).
    fn read_afresh(class: &Bound<'py, PyAny>, dense: bool) -> PyResult<(Self, Option<Known>)> {
        let py = class.py();
        if class.cast::<PyType>()?.is_subclass(objects::enum_type(py)?)? {
            let from_tables = uses_member_tables(class)?;
            let members = if from_tables {
                members_from_tables(class)?
            } else {
                members_by_iterating(class)?
            };
            let (body, abc_registry) = class_body(class, &ENUM_INTERNALS, &members)?;
            let kept_members = KnownMembers {
                from_tables,
                names: members.iter().map(|(name, _)| name.clone().unbind()).collect(),
            };
            let keepable = kept_members
                .names
                .iter()
                .all(|name| name.bind(py).is_exact_instance_of::<PyString>());
            let known = if keepable {
                known_shape(class, &body, abc_registry.is_some(), false, Some(kept_members))?
            } else {
                None
            };
            let shape = Self {
                skeleton: enum_skeleton(class, members)?,
                body,
                abc_registry,
                fills_by_build: false,
            };
            return Ok((shape, known));
        }
        let (body, abc_registry) = class_body(class, &[], &[])?;
        let fills_by_build = dense && abc_registry.is_none() && fills_by_build(class, &body)?;
        let known = known_shape(class, &body, abc_registry.is_some(), fills_by_build, None)?;
        let shape = Self {
            skeleton: class_skeleton(class, dense)?,
            body,
            abc_registry,
            fills_by_build,
        };
        Ok((shape, known))
    }

    /// The reduce tuple the C pickler writes.
    fn into_reduced(self, pickler: &PicklerState) -> PyResult<Bound<'py, PyAny>> {
        let names = pickler.reconstructors();
        let (make, args) = match self.skeleton {
            Skeleton::Class {
                metaclass,
                name,
                bases,
                type_kwargs,
                tracker_id,
            } => {
                let py = name.py();
                let items = [
                    metaclass,
                    name,
                    bases,
                    dict_of(py, type_kwargs)?,
                    tracker_id,
                    py.None().into_bound(py),
                ];
                (names.make_skeleton_class.bind(py), PyTuple::new(py, items)?)
            }
            Skeleton::Enum {
                bases,
                name,
                qualname,
                members,
                module,
                tracker_id,
            } => {
                let py = name.py();
                let members = dict_of(py, members)?;
                let items = [
                    bases,
                    name,
                    qualname,
                    members,
                    module,
                    tracker_id,
                    py.None().into_bound(py),
                ];
                (names.make_skeleton_enum.bind(py), PyTuple::new(py, items)?)
            }
        };
        let py = make.py();
        let body = PyDict::new(py);
        for (key, value) in self.body {
            body.set_item(super::function::fresh_str(&key)?, pickler.stable(&value)?)?;
        }
        if let Some(registry) = self.abc_registry {
            body.set_item(abc_registry_name(py), registry)?;
        }
        if self.fills_by_build {
            // BUILD sets the body attribute by attribute, as class_setstate
            // would, with no name for the loader to find.
            let state = PyTuple::new(py, [py.None().into_bound(py), body.into_any()])?;
            return Ok(PyTuple::new(py, [make.clone(), args.into_any(), state.into_any()])?.into_any());
        }
        let state = PyTuple::new(py, [body.into_any(), PyDict::new(py).into_any()])?.into_any();
        call_then_set(make, args.into_any(), state, names.class_setstate.bind(py))
    }
}

/// `make_skeleton_enum`'s arguments but the trailing None.
fn enum_skeleton<'py>(class: &Bound<'py, PyAny>, members: Pairs<'py>) -> PyResult<Skeleton<'py>> {
    let py = class.py();
    Ok(Skeleton::Enum {
        bases: class_attrs::getattr(class, intern!(py, "__bases__"))?,
        name: class_attrs::getattr(class, intern!(py, "__name__"))?,
        qualname: class_attrs::getattr(class, intern!(py, "__qualname__"))?,
        members,
        module: class_attrs::getattr(class, intern!(py, "__module__"))?,
        tracker_id: tracker::id_of(class)?.into_any(),
    })
}

/// What can be kept of a body read from `class`'s namespace: the
/// positions of its entries. None when its names are not all exact strs
/// (their filtering and order would ask Python's comparisons, which need
/// not answer alike twice) or when `__slots__`, which filters the body,
/// is a container that can change without the class changing.
fn known_shape(
    class: &Bound<'_, PyAny>,
    body: &Pairs<'_>,
    abc: bool,
    fills_by_build: bool,
    enum_members: Option<KnownMembers>,
) -> PyResult<Option<Known>> {
    if !body.iter().all(|(key, _)| key.is_exact_instance_of::<PyString>()) {
        return Ok(None);
    }
    if let Some((_, slots)) = body.iter().find(|(key, _)| name_is_in(key, &[&["__slots__"]]))
        && !fixed_names(slots)
    {
        return Ok(None);
    }
    let keys: Vec<&Bound<'_, PyAny>> = body.iter().map(|(key, _)| key).collect();
    let Some(body_positions) = class_cache::positions_of(own_dict(class)?.as_any(), &keys) else {
        return Ok(None);
    };
    Ok(Some(Known {
        body_positions,
        enum_members,
        fills_by_build,
        abc,
    }))
}

/// Whether `slots` is a str or a tuple of strs (exact types), which cannot
/// change.
fn fixed_names(slots: &Bound<'_, PyAny>) -> bool {
    if slots.is_exact_instance_of::<PyString>() {
        return true;
    }
    slots
        .cast_exact::<PyTuple>()
        .is_ok_and(|names| names.iter().all(|name| name.is_exact_instance_of::<PyString>()))
}

fn dict_of<'py>(py: Python<'py>, pairs: Pairs<'py>) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    for (key, value) in pairs {
        dict.set_item(key, value)?;
    }
    Ok(dict.into_any())
}

/// Whether the C unpickler's BUILD, given `(None, body)`, fills the
/// skeleton as `class_setstate` would: it sets each item with `setattr`
/// unless the object has a `__setstate__`, which a skeleton made by `type`
/// could only inherit from a base (checked on the class's whole MRO, which
/// holds more than the skeleton's). The ABC registry and `__firstlineno__`
/// need `class_setstate` (the caller checks for the registry).
fn fills_by_build(class: &Bound<'_, PyAny>, body: &Pairs<'_>) -> PyResult<bool> {
    let py = class.py();
    if !class.get_type().is(py.get_type::<PyType>())
        || body
            .iter()
            .any(|(key, _)| name_is_in(key, &[&["_abc_impl", "__firstlineno__"]]))
    {
        return Ok(false);
    }
    Ok(mro_lookup(class, intern!(py, "__setstate__"))?.is_none())
}

/// `type(None)`, `type(...)`, `type(NotImplemented)`: rebuilt as `type(x)`.
fn singleton_of<'py>(class: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = class.py();
    let candidates = [
        py.None().into_bound(py),
        py.Ellipsis().into_bound(py),
        py.NotImplemented().into_bound(py),
    ];
    Ok(candidates.into_iter().find(|value| value.get_type().is(class)))
}

/// A static type that `builtins` holds under its own name (`object`,
/// `type`, `property`, `classmethod`...), while `builtins` is not registered
/// for pickling by value: by reference, decided without the name lookups of
/// `byvalue::by_reference`, which every class body pays several times over
/// for the types of its descriptors and its metaclass and bases.
fn builtin_by_name(class: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = class.py();
    let Ok(class) = class.cast::<PyType>() else {
        return Ok(false);
    };
    // SAFETY: the flags and name of a live type object; a static type's
    // `tp_name` is a NUL-terminated string that lives as long as the type.
    let name = unsafe {
        let flags = ffi::PyType_GetFlags(class.as_type_ptr());
        if flags & ffi::Py_TPFLAGS_HEAPTYPE != 0 {
            return Ok(false);
        }
        CStr::from_ptr((*class.as_type_ptr()).tp_name)
    };
    // Static types outside `builtins` are named "module.name".
    let Ok(name) = name.to_str() else { return Ok(false) };
    if name.contains('.') || registry::is_top_level_registered(py, intern!(py, "builtins"))? {
        return Ok(false);
    }
    let builtins = objects::builtins_dict(py)?.cast::<PyDict>()?;
    // The name without a dot is the qualname, kept per static type with
    // its hash: no str made and hashed for each lookup.
    let found = match static_type_names::qualname_of(class.as_any()) {
        Some(qualname) => builtins.get_item(qualname)?,
        None => builtins.get_item(name)?,
    };
    Ok(found.is_some_and(|found| found.is(class)))
}

/// `{cls: name}` for the classes of the `types` module (code, cell, method
/// types...), which have no importable name of their own.
fn builtin_type_names(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    static CELL: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let names = CELL.get_or_try_init(py, || {
        let names = PyDict::new(py);
        for (name, value) in py.import("types")?.dict().iter() {
            if value.get_type().is(py.get_type::<PyType>()) {
                names.set_item(value, name)?;
            }
        }
        Ok::<_, PyErr>(names.unbind())
    })?;
    Ok(names.bind(py))
}

/// The skeleton's arguments; the type kwargs go beyond cloudpickle, which
/// sets the qualname and slots after creation, where they no longer take
/// effect: the qualname is kept (reprs, dataclasses) and slot classes come
/// back with slots, not with a `__dict__` per instance.
fn class_skeleton<'py>(class: &Bound<'py, PyAny>, dense: bool) -> PyResult<Skeleton<'py>> {
    let py = class.py();
    let own = own_dict(class)?;
    let mut type_kwargs = Vec::with_capacity(4);
    if own.contains(intern!(py, "__module__"))? {
        type_kwargs.push((
            intern!(py, "__module__").clone().into_any(),
            class_attrs::getattr(class, intern!(py, "__module__"))?,
        ));
    }
    type_kwargs.push((
        intern!(py, "__qualname__").clone().into_any(),
        class_attrs::getattr(class, intern!(py, "__qualname__"))?,
    ));
    // Classes made through `__mro_entries__` (NamedTuple, TypedDict) are
    // rebuilt by a metaclass that sets `__slots__` itself and refuses ours.
    if !own.contains(intern!(py, "__orig_bases__"))?
        && let Some(slots) = own.get_item(intern!(py, "__slots__"))?
    {
        type_kwargs.push((intern!(py, "__slots__").clone().into_any(), slots));
    }
    if let Some(dict_attr) = own.get_item(intern!(py, "__dict__"))?
        && dict_attr.is_exact_instance(objects::property_type(py)?.cast::<PyType>()?)
    {
        type_kwargs.push((intern!(py, "__dict__").clone().into_any(), dict_attr));
    }
    let mut metaclass = class.get_type().into_any();
    let mut bases = bases(class, &own)?;
    if dense {
        if metaclass.is(py.get_type::<PyType>()) {
            metaclass = py.None().into_bound(py);
        }
        if only_object(&bases) {
            bases = PyTuple::empty(py).into_any();
        }
    }
    Ok(Skeleton::Class {
        metaclass,
        name: class_attrs::getattr(class, intern!(py, "__name__"))?,
        bases,
        type_kwargs,
        tracker_id: tracker::id_of(class)?.into_any(),
    })
}

/// Whether `bases` is `(object,)`.
fn only_object(bases: &Bound<'_, PyAny>) -> bool {
    let object = bases.py().get_type::<PyAny>();
    bases
        .cast::<PyTuple>()
        .is_ok_and(|bases| bases.len() == 1 && bases.get_item(0).is_ok_and(|base| base.is(&object)))
}

/// `__orig_bases__` when the class itself has one (generic classes), so
/// that `Generic[T]` bases come back as written.
fn bases<'py>(class: &Bound<'py, PyAny>, own: &Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    match own.get_item(intern!(py, "__orig_bases__"))? {
        Some(_) => class_attrs::getattr(class, intern!(py, "__orig_bases__")),
        None => class_attrs::getattr(class, intern!(py, "__bases__")),
    }
}

/// `(member name, value)` in definition order, aliases left out: what
/// iterating the class gives, and each member's `name` and `value`.
fn members_by_iterating<'py>(class: &Bound<'py, PyAny>) -> PyResult<Pairs<'py>> {
    let py = class.py();
    let mut members = Vec::new();
    for member in class.try_iter()? {
        let member = member?;
        members.push((
            member.getattr(intern!(py, "name"))?,
            member.getattr(intern!(py, "value"))?,
        ));
    }
    Ok(members)
}

/// Whether the class uses `EnumType.__iter__` and `Enum`'s `name` and
/// `value` properties (each runs Python code per member), so that its
/// members can be read from the attributes those read.
fn uses_member_tables(class: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = class.py();
    let checks = [
        (
            class.get_type().into_any(),
            objects::enum_meta(py)?,
            intern!(py, "__iter__"),
        ),
        (class.clone(), objects::enum_type(py)?, intern!(py, "name")),
        (class.clone(), objects::enum_type(py)?, intern!(py, "value")),
    ];
    for (kind, owner, name) in &checks {
        let found = mro_lookup(kind, name)?;
        if !matches!((found, own_dict(owner)?.get_item(name)?), (Some(found), Some(standard)) if found.is(&standard)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The members as `members_by_iterating` finds them, read from
/// `_member_names_`, `_member_map_` and each member's `_name_` and
/// `_value_` (for a class that `uses_member_tables`).
fn members_from_tables<'py>(class: &Bound<'py, PyAny>) -> PyResult<Pairs<'py>> {
    let py = class.py();
    let names = class_attrs::getattr(class, intern!(py, "_member_names_"))?;
    let by_name = class_attrs::getattr(class, intern!(py, "_member_map_"))?;
    let mut members = Vec::new();
    for name in names.try_iter()? {
        let member = by_name.get_item(name?)?;
        members.push((
            member.getattr(intern!(py, "_name_"))?,
            member.getattr(intern!(py, "_value_"))?,
        ));
    }
    Ok(members)
}

/// What `kind`'s MRO holds under `name`, no descriptor called (as
/// `_PyType_Lookup`): an enum's `name` read off the class would look for a
/// member of that name instead.
fn mro_lookup<'py>(kind: &Bound<'py, PyAny>, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = kind.py();
    for base in kind.getattr(intern!(py, "__mro__"))?.cast_into::<PyTuple>()?.iter() {
        if let Some(found) = own_dict(&base)?.get_item(name)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The class's own namespace sorted by name, minus the entries that are
/// the very objects a base provides under the same name, what Python
/// recreates (`internals` too), the slot descriptors that `__slots__`
/// makes again and the enum members (made with the skeleton); and an
/// ABC's registry (see `ByValue::abc_registry`).
fn class_body<'py>(
    class: &Bound<'py, PyAny>,
    internals: &[&str],
    members: &[(Bound<'py, PyAny>, Bound<'py, PyAny>)],
) -> PyResult<(Pairs<'py>, Option<Bound<'py, PyAny>>)> {
    let py = class.py();
    let own = own_dict(class)?;
    let abc = class.get_type().is_subclass(objects::abc_meta(py)?.cast::<PyType>()?)?;
    let bases = class_attrs::getattr(class, intern!(py, "__bases__"))?.cast_into::<PyTuple>()?;
    let base_dicts = bases.iter().map(|base| own_dict(&base)).collect::<PyResult<Vec<_>>>()?;
    let abc_internals: &[&str] = if abc { &ABC_INTERNALS } else { &[] };
    let recreated_names = [
        &ALWAYS_RECREATED,
        version::recreated_class_attrs(py),
        internals,
        abc_internals,
    ];
    let mut body = Vec::with_capacity(own.len());
    for (key, value) in own.iter() {
        if name_is_in(&key, &recreated_names) {
            continue;
        }
        if inherited(&base_dicts, &key)?.is_some_and(|base_value| base_value.is(&value)) {
            continue;
        }
        body.push((key, value));
    }
    let mut dropped: Vec<Bound<'py, PyAny>> = members.iter().map(|(name, _)| name.clone()).collect();
    if body.iter().any(|(key, _)| name_is_in(key, &[&["__slots__"]])) {
        let slots = class_attrs::getattr(class, intern!(py, "__slots__"))?;
        if slots.is_instance_of::<PyString>() {
            dropped.push(slots);
        } else {
            for slot in slots.try_iter()? {
                dropped.push(slot?);
            }
        }
    }
    if !dropped.is_empty() {
        body = retain_undropped(body, &dropped)?;
    }
    sort_by_name(&mut body)?;
    let registry = if abc { Some(abc_registry(class)?) } else { None };
    Ok((body, registry))
}

/// The name an ABC's registry travels under.
pub(crate) fn abc_registry_name(py: Python<'_>) -> &Bound<'_, PyString> {
    intern!(py, "_abc_impl")
}

/// Whether `key` is a str found in one of `lists`.
fn name_is_in(key: &Bound<'_, PyAny>, lists: &[&[&str]]) -> bool {
    let Some(name) = key.cast::<PyString>().ok().and_then(|key| key.to_str().ok()) else {
        return false;
    };
    lists.iter().any(|names| names.contains(&name))
}

/// `body` without the entries whose key equals one of `dropped`.
fn retain_undropped<'py>(body: Pairs<'py>, dropped: &[Bound<'py, PyAny>]) -> PyResult<Pairs<'py>> {
    let mut kept = Vec::with_capacity(body.len());
    'entries: for (key, value) in body {
        for name in dropped {
            if key.eq(name)? {
                continue 'entries;
            }
        }
        kept.push((key, value));
    }
    Ok(kept)
}

/// Sorts as `sorted()` sorts the names: for exact strs with UTF-8 text, by
/// their bytes (UTF-8 keeps code point order) without calling Python;
/// anything else through Python's comparison.
fn sort_by_name(body: &mut Pairs<'_>) -> PyResult<()> {
    let texts = body
        .iter()
        .map(|(key, _)| key.cast_exact::<PyString>().ok().and_then(|key| key.to_str().ok()))
        .collect::<Option<Vec<_>>>();
    if let Some(texts) = texts {
        let mut order: Vec<usize> = (0..body.len()).collect();
        order.sort_by_key(|&index| texts[index].as_bytes());
        let mut slots: Vec<_> = std::mem::take(body).into_iter().map(Some).collect();
        body.extend(order.into_iter().filter_map(|index| slots[index].take()));
        return Ok(());
    }
    let mut failure = None;
    body.sort_by(|(a, _), (b, _)| {
        a.compare(b).unwrap_or_else(|error| {
            failure.get_or_insert(error);
            std::cmp::Ordering::Equal
        })
    });
    failure.map_or(Ok(()), Err)
}

/// What the bases provide under `key`: the first base's entry that has one
/// (the merge of their own dicts, the last base first).
fn inherited<'py>(base_dicts: &[Bound<'py, PyDict>], key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    for own in base_dicts {
        if let Some(value) = own.get_item(key)? {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// An ABC's `_abc_impl` travels as the list of its registered virtual
/// subclasses, which the loading side registers again.
fn abc_registry<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = class.py();
    let dump = objects::abc_get_dump(py)?.call1((class,))?;
    let registry = dump.get_item(0)?;
    let subclasses = PyList::empty(py);
    for weak in registry.try_iter()? {
        let subclass = weak?.call0()?;
        if !subclass.is_none() {
            subclasses.append(subclass)?;
        }
    }
    Ok(subclasses.into_any())
}

/// The class's own namespace, to read: the dict behind `cls.__dict__` (a
/// mappingproxy), or a copy where the type keeps none of its own.
fn own_dict<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    if let Ok(class) = class.cast::<PyType>() {
        // SAFETY: a live type object; `tp_dict`, when set, is a dict it owns.
        let namespace = unsafe { (*class.as_type_ptr()).tp_dict };
        if !namespace.is_null() {
            // SAFETY: a borrowed reference to a dict, made strong at once.
            return Ok(unsafe { Bound::from_borrowed_ptr(class.py(), namespace).cast_into_unchecked() });
        }
    }
    objects::dict_copy(&class.getattr(intern!(class.py(), "__dict__"))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{module, with_python};

    fn builtin_by_name_of(py: Python<'_>, expression: &std::ffi::CStr) -> bool {
        let scope = PyDict::new(py);
        py.run(c"import collections, types", Some(&scope), None).unwrap();
        builtin_by_name(&py.eval(expression, Some(&scope), None).unwrap()).unwrap()
    }

    #[test]
    fn only_static_types_that_builtins_names_skip_the_by_value_decision() {
        with_python(|py| {
            for named in [c"object", c"type", c"property", c"classmethod", c"int"] {
                assert!(builtin_by_name_of(py, named), "{named:?}");
            }
            // `function` is not a name in builtins; OrderedDict lives in a
            // module; a class statement makes a heap type; 3 is no type.
            for other in [c"types.FunctionType", c"collections.OrderedDict", c"3"] {
                assert!(!builtin_by_name_of(py, other), "{other:?}");
            }
            let heap = module(py, "fp_test_class_heap", c"class Local: pass");
            assert!(!builtin_by_name(&heap.getattr("Local").unwrap()).unwrap());
        });
    }
}
