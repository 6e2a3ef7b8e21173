//! Classes by value, written straight from what `reducers::class` reads
//! off the type (`ByValue`): the skeleton's call, then the body, with the
//! bytes the C pickler would write for the reducer's tuple, but without
//! building the body dict, the argument tuple or the state tuple.
//!
//! Those containers were made fresh for each dump, so nothing else in the
//! pickle could refer to them: each is written with a memo index of its own
//! (the memo slot the C pickler would give it) and no object behind it.
//! Body names are written by text, as the fresh copies the reducer makes,
//! so the bytes do not depend on which names the process interned.

use pyo3::prelude::*;
use pyo3::types::PyString;

use super::Dumper;
use crate::reducers::class::{ByValue, Pairs, Skeleton, abc_registry_name};
use crate::reducers::function::fresh_str;
use crate::writer::opcodes::*;

/// How `write_fresh_dict` writes the keys of its pairs.
#[derive(Clone, Copy)]
pub(super) enum Keys {
    /// As any object.
    AsTheyAre,
    /// Class attribute names, written as fresh copies (by text), with the
    /// values as class state writes them.
    ClassNames,
    /// A default-reduced object's slot names (see `defaults.rs`).
    SlotNames,
}

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_class_by_value(&mut self, class: &Bound<'py, PyAny>, shape: ByValue<'py>) -> PyResult<()> {
        self.names_by_text += 1;
        self.by_value_parts += 1;
        let result = self.write_class(class, &shape);
        self.names_by_text -= 1;
        self.by_value_parts -= 1;
        result
    }

    fn write_class(&mut self, class: &Bound<'py, PyAny>, shape: &ByValue<'py>) -> PyResult<()> {
        let py = self.py;
        let names = self.state.reconstructors();
        match &shape.skeleton {
            Skeleton::Class {
                metaclass,
                name,
                bases,
                type_kwargs,
                tracker_id,
            } => {
                self.save(names.make_skeleton_class.bind(py))?;
                self.out.write(&[MARK])?;
                for part in [metaclass, name, bases] {
                    self.save(part)?;
                }
                self.write_fresh_dict(type_kwargs, Keys::AsTheyAre, None)?;
                self.save(tracker_id)?;
                self.out.write(&[NONE])?;
                self.close_fresh_tuple(6)?;
            }
            Skeleton::Enum {
                bases,
                name,
                qualname,
                members,
                module,
                tracker_id,
            } => {
                self.save(names.make_skeleton_enum.bind(py))?;
                self.out.write(&[MARK])?;
                for part in [bases, name, qualname] {
                    self.save(part)?;
                }
                self.write_fresh_dict(members, Keys::AsTheyAre, None)?;
                self.save(module)?;
                self.save(tracker_id)?;
                self.out.write(&[NONE])?;
                self.close_fresh_tuple(7)?;
            }
        }
        self.out.write(&[REDUCE])?;
        if self.memoize_made(class)? {
            return Ok(());
        }
        if shape.fills_by_build {
            // (None, body), then BUILD.
            self.out.write(&[NONE])?;
            self.write_body(shape)?;
            self.close_fresh_tuple(2)?;
            return self.out.write(&[BUILD]);
        }
        // class_setstate(class, (body, {})), its result discarded.
        self.save(names.class_setstate.bind(py))?;
        self.save(class)?;
        self.write_body(shape)?;
        self.write_fresh_dict(&Vec::new(), Keys::AsTheyAre, None)?;
        self.close_fresh_tuple(2)?;
        self.out.write(&[TUPLE2, REDUCE, POP])
    }

    /// Ends a tuple of `size` items written just before (after a MARK when
    /// there are more than three), as `save_tuple` ends a new tuple.
    pub(super) fn close_fresh_tuple(&mut self, size: usize) -> PyResult<()> {
        self.out
            .write(&[if size <= 3 { TUPLE1 + size as u8 - 1 } else { TUPLE }])?;
        self.write_fresh_put()?;
        self.out.opcode_boundary()
    }

    /// The body's attributes, then an ABC's registry under its interned name.
    fn write_body(&mut self, shape: &ByValue<'py>) -> PyResult<()> {
        let registry = shape
            .abc_registry
            .as_ref()
            .map(|registry| (abc_registry_name(self.py).clone().into_any(), registry));
        self.write_fresh_dict(&shape.body, Keys::ClassNames, registry).map(drop)
    }

    /// A dict of `pairs`, then `last` (its key as it is), batched as
    /// `save_dict` batches a new dict; `keys` says how the pairs' keys are
    /// written. Returns the dict's memo index.
    pub(super) fn write_fresh_dict(
        &mut self,
        pairs: &Pairs<'py>,
        keys: Keys,
        last: Option<(Bound<'py, PyAny>, &Bound<'py, PyAny>)>,
    ) -> PyResult<u32> {
        self.out.write(&[EMPTY_DICT])?;
        let index = self.write_fresh_put()?;
        let count = pairs.len() + usize::from(last.is_some());
        let mut entries = pairs
            .iter()
            .map(|(key, value)| (key, value, keys))
            .chain(last.iter().map(|(key, value)| (key, *value, Keys::AsTheyAre)));
        if count == 1 {
            if let Some((key, value, keys)) = entries.next() {
                self.write_entry(key, value, keys)?;
            }
            self.out.write(&[SETITEM])?;
            self.out.opcode_boundary()?;
            return Ok(index);
        }
        if count > 1 {
            loop {
                self.out.write(&[MARK])?;
                let mut written = 0;
                while written < BATCH_SIZE {
                    let Some((key, value, keys)) = entries.next() else {
                        break;
                    };
                    self.write_entry(key, value, keys)?;
                    written += 1;
                }
                self.out.write(&[SETITEMS])?;
                // A full batch is followed by another, empty or not, as in
                // `save_dict`.
                if written < BATCH_SIZE {
                    break;
                }
            }
        }
        self.out.opcode_boundary()?;
        Ok(index)
    }

    fn write_entry(&mut self, key: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>, keys: Keys) -> PyResult<()> {
        match keys {
            Keys::AsTheyAre => {
                self.save(key)?;
                return self.save(value);
            }
            Keys::SlotNames => {
                self.save_slot_name(key)?;
                return self.save(value);
            }
            Keys::ClassNames => {}
        }
        if key.is_exact_instance_of::<PyString>() {
            // What saving a fresh copy comes to: never in the memo by
            // identity, so written (or found) by its text.
            self.save_str(key, true)?;
            self.out.opcode_boundary()?;
        } else {
            self.save(&fresh_str(key)?)?;
        }
        let value = self.stable(value)?;
        self.save(&value)
    }

    /// The memo slot the C pickler gives a container made for this dump.
    pub(super) fn write_fresh_put(&mut self) -> PyResult<u32> {
        let index = self.memo.take_index();
        self.write_put(index)?;
        Ok(index)
    }
}
