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

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_class_by_value(&mut self, class: &Bound<'py, PyAny>, shape: ByValue<'py>) -> PyResult<()> {
        self.names_by_text += 1;
        let result = self.write_class(class, &shape);
        self.names_by_text -= 1;
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
                self.write_fresh_dict(type_kwargs, false, None)?;
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
                self.write_fresh_dict(members, false, None)?;
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
        self.write_fresh_dict(&Vec::new(), false, None)?;
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
        self.write_fresh_dict(&shape.body, true, registry).map(drop)
    }

    /// A dict of `pairs`, then `last`, batched as `save_dict` batches a new
    /// dict. `body_names`: the keys are class attribute names, written as
    /// fresh copies (by text), and the values as class state writes them.
    /// Returns the dict's memo index.
    pub(super) fn write_fresh_dict(
        &mut self,
        pairs: &Pairs<'py>,
        body_names: bool,
        last: Option<(Bound<'py, PyAny>, &Bound<'py, PyAny>)>,
    ) -> PyResult<u32> {
        self.out.write(&[EMPTY_DICT])?;
        let index = self.write_fresh_put()?;
        let count = pairs.len() + usize::from(last.is_some());
        let mut entries = pairs
            .iter()
            .map(|(key, value)| (key, value, body_names))
            .chain(last.iter().map(|(key, value)| (key, *value, false)));
        if count == 1 {
            if let Some((key, value, body_name)) = entries.next() {
                self.write_entry(key, value, body_name)?;
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
                    let Some((key, value, body_name)) = entries.next() else {
                        break;
                    };
                    self.write_entry(key, value, body_name)?;
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

    fn write_entry(&mut self, key: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>, body_name: bool) -> PyResult<()> {
        if !body_name {
            self.save(key)?;
            return self.save(value);
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
    fn write_fresh_put(&mut self) -> PyResult<u32> {
        let index = self.memo.take_index();
        self.write_put(index)?;
        Ok(index)
    }
}
