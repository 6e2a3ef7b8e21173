//! `Pickler.dispatch_table`: a live, ChainMap-like view over the pickler's
//! own reducers and `copyreg.dispatch_table`.
//!
//! The C pickler looks every object's exact type up in it, so a miss (the
//! common case: instances of importable classes) must stay in native code;
//! `collections.ChainMap.__getitem__` would run Python and raise twice.

use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

#[pyclass(mapping, frozen, module = "flightpickle._native")]
pub(crate) struct DispatchTable {
    maps: Py<PyList>,
}

#[pymethods]
impl DispatchTable {
    #[new]
    #[pyo3(signature = (*maps))]
    fn new(maps: &Bound<'_, PyTuple>) -> PyResult<Self> {
        let maps = if maps.is_empty() {
            PyList::new(maps.py(), [PyDict::new(maps.py())])?
        } else {
            PyList::new(maps.py(), maps.iter())?
        };
        Ok(Self { maps: maps.unbind() })
    }

    /// The mappings, searched in order; writes go to the first one.
    #[getter]
    fn maps<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.maps.bind(py).clone()
    }

    fn __getitem__<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match self.find(key)? {
            Some(value) => Ok(value),
            None => Err(PyKeyError::new_err(key.clone().unbind())),
        }
    }

    fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.find(key)?.is_some())
    }

    #[pyo3(signature = (key, default = None))]
    fn get<'py>(
        &self,
        key: &Bound<'py, PyAny>,
        default: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(self.find(key)?.or(default))
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        self.first(key.py())?.set_item(key, value)
    }

    fn __delitem__(&self, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let first = self.first(key.py())?;
        if !first.contains(key)? {
            return Err(PyKeyError::new_err(format!(
                "Key not found in the first mapping: {}",
                key.repr()?
            )));
        }
        first.del_item(key)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.merged(py)?.len())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.merged(py)?.try_iter()?.into_any())
    }

    fn keys<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, "KeysView")
    }

    fn items<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, "ItemsView")
    }

    fn values<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        view(slf, "ValuesView")
    }

    /// A view with `child` (or a new dict) searched first.
    #[pyo3(signature = (child = None))]
    fn new_child(&self, py: Python<'_>, child: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        let maps = PyList::new(py, [child.unwrap_or_else(|| PyDict::new(py).into_any())])?;
        for map in self.maps.bind(py).iter() {
            maps.append(map)?;
        }
        Ok(Self { maps: maps.unbind() })
    }

    #[getter]
    fn parents(&self, py: Python<'_>) -> PyResult<Self> {
        let maps = self.maps.bind(py);
        let rest = maps.get_slice(1, maps.len()).into_any();
        Self::new(&PyTuple::new(py, rest.try_iter()?.collect::<PyResult<Vec<_>>>()?)?)
    }

    fn copy(&self, py: Python<'_>) -> PyResult<Self> {
        let maps = self.maps.bind(py).get_slice(0, usize::MAX);
        let first = maps.get_item(0)?.call_method0("copy")?;
        maps.set_item(0, first)?;
        Ok(Self { maps: maps.unbind() })
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let maps: Vec<String> = self
            .maps
            .bind(py)
            .iter()
            .map(|m| m.repr().map(|r| r.to_string()))
            .collect::<PyResult<_>>()?;
        Ok(format!("DispatchTable({})", maps.join(", ")))
    }
}

impl DispatchTable {
    /// Whether this view is exactly `[our reducers, copyreg.dispatch_table]`.
    pub(crate) fn is_default_chain(&self, py: Python<'_>) -> PyResult<bool> {
        let maps = self.maps.bind(py);
        if maps.len() != 2 {
            return Ok(false);
        }
        let copyreg_table = crate::objects::copyreg_dispatch_table(py)?;
        Ok(maps.get_item(0)?.is(crate::reducers::registered(py)?) && maps.get_item(1)?.is(copyreg_table))
    }

    fn find<'py>(&self, key: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
        for map in self.maps.bind(key.py()).iter() {
            if let Ok(dict) = map.cast_exact::<PyDict>() {
                if let Some(value) = dict.get_item(key)? {
                    return Ok(Some(value));
                }
                continue;
            }
            match map.get_item(key) {
                Ok(value) => return Ok(Some(value)),
                Err(err) if err.is_instance_of::<PyKeyError>(key.py()) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(None)
    }

    fn first<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.maps.bind(py).get_item(0)
    }

    /// All keys, once each, in `collections.ChainMap` order (last map first).
    fn merged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let merged = PyDict::new(py);
        for map in self.maps.bind(py).iter().rev() {
            for key in map.try_iter()? {
                merged.set_item(key?, py.None())?;
            }
        }
        Ok(merged)
    }
}

fn view<'py>(table: &Bound<'py, DispatchTable>, kind: &str) -> PyResult<Bound<'py, PyAny>> {
    table.py().import("collections.abc")?.getattr(kind)?.call1((table,))
}
