//! What a dump derives from a code object alone, kept per code object:
//! repeated dumps of a function (a UDF shipped with every stage) then look
//! up the global names its bytecode uses and its reduced fields instead of
//! reading them again. Code objects are immutable, so an entry never goes
//! stale; whatever else a dump needs (the globals' current values, the
//! by-value decision) is still read on every dump.
//!
//! The writer also keeps here the pickled bytes of each code object's
//! fields (see `writer/dumper/code.rs`).
//!
//! An entry holds its code object, so the address that keys it cannot be
//! reused; the cache is emptied when it reaches `CAPACITY` entries, which
//! bounds what it keeps alive in programs that compile code at run time.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::quick_hash::QuickMap;

const CAPACITY: usize = 2048;

/// Code object (kept alive) and the value derived from it, by address.
type Entries<V> = QuickMap<usize, (Py<PyAny>, Arc<V>)>;

/// A value per code object; a tuple unless said otherwise.
pub(crate) struct CodeCache<V = Py<PyTuple>> {
    entries: Mutex<Option<Entries<V>>>,
}

impl<V> CodeCache<V> {
    pub(crate) const fn new() -> Self {
        Self {
            entries: Mutex::new(None),
        }
    }

    /// The value for `code`, made by `make` on the first request. `make`
    /// runs without the lock held (it may run Python code, and so let
    /// another thread in).
    pub(crate) fn get_or_make_shared(
        &self,
        code: &Bound<'_, PyAny>,
        make: impl FnOnce() -> PyResult<V>,
    ) -> PyResult<Arc<V>> {
        let key = code.as_ptr() as usize;
        if let Some((_, value)) = self.lock().as_ref().and_then(|entries| entries.get(&key)) {
            return Ok(value.clone());
        }
        let value = Arc::new(make()?);
        let mut entries = self.lock();
        let entries = entries.get_or_insert_with(Entries::default);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (code.clone().unbind(), value.clone()));
        Ok(value)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Entries<V>>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl CodeCache {
    /// `get_or_make_shared` for a tuple.
    pub(crate) fn get_or_make<'py>(
        &self,
        code: &Bound<'py, PyAny>,
        make: impl FnOnce() -> PyResult<Bound<'py, PyTuple>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let value = self.get_or_make_shared(code, || make().map(Bound::unbind))?;
        Ok(value.bind(code.py()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::with_python;

    #[test]
    fn makes_a_value_once_per_code_object() {
        with_python(|py| {
            let cache = CodeCache::new();
            let tuple = |n: u32| PyTuple::new(py, [n]);
            let first = py.eval(c"compile('1', 'a', 'eval')", None, None).unwrap();
            let second = py.eval(c"compile('2', 'b', 'eval')", None, None).unwrap();
            let mut made = 0;
            for _ in 0..3 {
                cache
                    .get_or_make(&first, || {
                        made += 1;
                        tuple(7)
                    })
                    .unwrap();
            }
            assert!(
                cache
                    .get_or_make(&second, || tuple(8))
                    .unwrap()
                    .eq(tuple(8).unwrap())
                    .unwrap()
            );
            assert_eq!(made, 1);
            assert!(
                cache
                    .get_or_make(&first, || tuple(0))
                    .unwrap()
                    .eq(tuple(7).unwrap())
                    .unwrap()
            );
        });
    }

    #[test]
    fn a_failure_to_make_is_not_cached() {
        with_python(|py| {
            let cache = CodeCache::new();
            let code = py.eval(c"compile('3', 'c', 'eval')", None, None).unwrap();
            let failed = cache.get_or_make(&code, || Err(pyo3::exceptions::PyValueError::new_err("no")));
            assert!(failed.is_err());
            let made = cache.get_or_make(&code, || PyTuple::new(py, [9])).unwrap();
            assert!(made.eq(PyTuple::new(py, [9]).unwrap()).unwrap());
        });
    }
}
