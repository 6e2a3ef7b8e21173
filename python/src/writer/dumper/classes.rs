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
use crate::reducers::class::{ByValue, Pairs, Skeleton};
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
                self.write_fresh_dict(type_kwargs, false)?;
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
                self.write_fresh_dict(members, false)?;
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
            self.write_fresh_dict(&shape.body, true)?;
            self.close_fresh_tuple(2)?;
            return self.out.write(&[BUILD]);
        }
        // class_setstate(class, (body, {})), its result discarded.
        self.save(names.class_setstate.bind(py))?;
        self.save(class)?;
        self.write_fresh_dict(&shape.body, true)?;
        self.write_fresh_dict(&Vec::new(), false)?;
        self.close_fresh_tuple(2)?;
        self.out.write(&[TUPLE2, REDUCE, POP])
    }

    /// Ends a tuple of `size` items written just before (after a MARK when
    /// there are more than three), as `save_tuple` ends a new tuple.
    fn close_fresh_tuple(&mut self, size: usize) -> PyResult<()> {
        self.out
            .write(&[if size <= 3 { TUPLE1 + size as u8 - 1 } else { TUPLE }])?;
        self.write_fresh_put()?;
        self.out.opcode_boundary()
    }

    /// A dict of `pairs`, batched as `save_dict` batches a new dict.
    /// `body`: keys are class attribute names, written as fresh copies
    /// (by text), and values as class state writes them.
    fn write_fresh_dict(&mut self, pairs: &Pairs<'py>, body: bool) -> PyResult<()> {
        self.out.write(&[EMPTY_DICT])?;
        self.write_fresh_put()?;
        if let [(key, value)] = pairs.as_slice() {
            self.write_entry(key, value, body)?;
            self.out.write(&[SETITEM])?;
            return self.out.opcode_boundary();
        }
        if !pairs.is_empty() {
            let mut batches = pairs.chunks(BATCH_SIZE);
            loop {
                let batch = batches.next().unwrap_or_default();
                self.out.write(&[MARK])?;
                for (key, value) in batch {
                    self.write_entry(key, value, body)?;
                }
                self.out.write(&[SETITEMS])?;
                // A full batch is followed by another, empty or not, as in
                // `save_dict`.
                if batch.len() < BATCH_SIZE {
                    break;
                }
            }
        }
        self.out.opcode_boundary()
    }

    fn write_entry(&mut self, key: &Bound<'py, PyAny>, value: &Bound<'py, PyAny>, body: bool) -> PyResult<()> {
        if !body {
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
    fn write_fresh_put(&mut self) -> PyResult<()> {
        let index = self.memo.take_index();
        self.write_put(index)
    }
}
