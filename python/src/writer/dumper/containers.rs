//! Tuples, lists, dicts, sets and frozensets, in the C pickler's batches.

use pyo3::exceptions::PyRuntimeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use super::Dumper;
use crate::stable::SortedStrings;
use crate::writer::opcodes::*;

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_tuple(&mut self, tuple: &Bound<'py, PyTuple>) -> PyResult<()> {
        let size = tuple.len();
        if size == 0 {
            return self.out.write(&[EMPTY_TUPLE]);
        }
        let short = size <= 3;
        if !short {
            self.out.write(&[MARK])?;
        }
        for item in tuple.iter() {
            self.save(&item)?;
        }
        if let Some(index) = self.memo.get(tuple.as_any()) {
            // The tuple was made while its items were written (a cycle
            // through a mutable item): drop the items, use that one.
            if short {
                self.out.write(&vec![POP; size])?;
            } else {
                self.out.write(&[POP_MARK])?;
            }
            return self.write_get(index);
        }
        self.out.write(&[if short { TUPLE1 + size as u8 - 1 } else { TUPLE }])?;
        self.memoize(tuple.as_any()).map(drop)
    }

    pub(super) fn save_list(&mut self, list: &Bound<'py, PyList>) -> PyResult<()> {
        self.out.write(&[EMPTY_LIST])?;
        self.memoize(list.as_any())?;
        if list.len() == 1 {
            self.save(&list.get_item(0)?)?;
            return self.out.write(&[APPEND]);
        }
        // The length is read again after each item: reducers may change it.
        let mut index = 0;
        while index < list.len() {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE && index < list.len() {
                self.save(&list.get_item(index)?)?;
                index += 1;
                count += 1;
            }
            self.out.write(&[APPENDS])?;
        }
        Ok(())
    }

    pub(super) fn save_dict(&mut self, dict: &Bound<'py, PyDict>) -> PyResult<()> {
        self.out.write(&[EMPTY_DICT])?;
        self.memoize(dict.as_any())?;
        let size = dict.len();
        if size == 0 {
            return Ok(());
        }
        let mut position: ffi::Py_ssize_t = 0;
        let mut next = |dumper: &Self| -> PyResult<Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
            if dict.len() != size {
                return Err(dict_changed_size());
            }
            let (mut key, mut value) = (std::ptr::null_mut(), std::ptr::null_mut());
            // SAFETY: PyDict_Next bounds-checks `position` against the
            // current table; the borrowed pair is made strong at once.
            if unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut position, &mut key, &mut value) } == 0 {
                return Ok(None);
            }
            unsafe {
                Ok(Some((
                    Bound::from_borrowed_ptr(dumper.py, key),
                    Bound::from_borrowed_ptr(dumper.py, value),
                )))
            }
        };
        if size == 1 {
            if let Some((key, value)) = next(self)? {
                self.save(&key)?;
                self.save(&value)?;
            }
            return self.out.write(&[SETITEM]);
        }
        loop {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE {
                let Some((key, value)) = next(self)? else { break };
                self.save(&key)?;
                self.save(&value)?;
                count += 1;
            }
            self.out.write(&[SETITEMS])?;
            if dict.len() != size {
                return Err(dict_changed_size());
            }
            if count < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_set(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 4 {
            return self.save_set_as_call(set);
        }
        self.out.write(&[EMPTY_SET])?;
        self.memoize(set)?;
        if set.len()? == 0 {
            return Ok(());
        }
        let mut items = set.try_iter()?;
        loop {
            self.out.write(&[MARK])?;
            let mut count = 0;
            while count < BATCH_SIZE {
                let Some(item) = items.next() else { break };
                self.save(&item?)?;
                count += 1;
            }
            self.out.write(&[ADDITEMS])?;
            if count < BATCH_SIZE {
                return Ok(());
            }
        }
    }

    pub(super) fn save_frozenset(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        if self.proto < 4 {
            return self.save_set_as_call(set);
        }
        self.out.write(&[MARK])?;
        for item in set.try_iter()? {
            self.save(&item?)?;
        }
        if let Some(index) = self.memo.get(set) {
            self.out.write(&[POP_MARK])?;
            return self.write_get(index);
        }
        self.out.write(&[FROZENSET])?;
        self.memoize(set).map(drop)
    }

    /// A set of strings that function or class state holds, in sorted
    /// order: the set opcodes, where the stand-in's `__reduce__` would
    /// cost the load a `find_class` of `builtins.set` and a call.
    pub(super) fn save_sorted_strings(&mut self, sorted: &Bound<'py, SortedStrings>) -> PyResult<()> {
        let py = self.py;
        let stand_in = sorted.get();
        let items: Vec<_> = stand_in.items(py).iter().collect();
        if stand_in.is_frozen(py) {
            self.out.write(&[MARK])?;
            for item in &items {
                self.save(item)?;
            }
            self.out.write(&[FROZENSET])?;
            return self.memoize(sorted.as_any()).map(drop);
        }
        self.out.write(&[EMPTY_SET])?;
        self.memoize(sorted.as_any())?;
        for batch in items.chunks(BATCH_SIZE) {
            self.out.write(&[MARK])?;
            for item in batch {
                self.save(item)?;
            }
            self.out.write(&[ADDITEMS])?;
        }
        Ok(())
    }

    /// `set(items)` or `frozenset(items)`, the form before protocol 4.
    fn save_set_as_call(&mut self, set: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let items = PyList::new(py, set.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        let args = PyTuple::new(py, [items])?;
        let reduced = PyTuple::new(py, [set.get_type().into_any(), args.into_any()])?;
        self.save_reduce(&reduced, Some(set))
    }
}

#[cold]
#[inline(never)]
fn dict_changed_size() -> PyErr {
    PyRuntimeError::new_err("dictionary changed size during iteration")
}
