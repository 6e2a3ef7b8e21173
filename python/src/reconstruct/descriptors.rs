//! The native writer's shape for the descriptors of a class body:
//! `make_descriptor(kind, *parts)` calls `staticmethod`, `classmethod` or
//! `property` (chosen by `kind`) with `parts`. One reconstructor for the
//! three means one name for the unpickler to find per pickle, where naming
//! each type costs a `find_class` of `builtins` each (an import and an
//! attribute lookup that formats and drops an AttributeError).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};

use crate::objects;

/// The wrapper types `make_descriptor` makes, by their code on the wire.
/// The codes are a wire format: never renumber one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DescriptorKind {
    /// `staticmethod(func)`.
    StaticMethod = 0,
    /// `classmethod(func)`.
    ClassMethod = 1,
    /// `property(fget, fset, fdel, doc)`, trailing Nones left out.
    Property = 2,
}

impl DescriptorKind {
    const ALL: [DescriptorKind; 3] = [Self::StaticMethod, Self::ClassMethod, Self::Property];

    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    /// The type this kind wraps with.
    pub(crate) fn wrapper_type(self, py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
        match self {
            Self::StaticMethod => objects::staticmethod_type(py),
            Self::ClassMethod => objects::classmethod_type(py),
            Self::Property => objects::property_type(py),
        }
    }

    /// The kind whose wrapper type is exactly `kind` (not a subclass: a
    /// subclass may carry more than these parts).
    pub(crate) fn of_exact_type(py: Python<'_>, kind: &Bound<'_, PyAny>) -> PyResult<Option<Self>> {
        for candidate in Self::ALL {
            if candidate.wrapper_type(py)?.is(kind) {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    fn from_code(code: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Ok(code) = code.cast::<PyInt>() else {
            return Err(PyTypeError::new_err(format!(
                "make_descriptor: the kind must be an int, not {}",
                code.get_type().name()?
            )));
        };
        let known = code
            .extract::<u8>()
            .ok()
            .and_then(|code| Self::ALL.get(usize::from(code)));
        known.copied().ok_or_else(|| {
            PyValueError::new_err(format!(
                "make_descriptor: unknown descriptor kind {code} (0 staticmethod, 1 classmethod, 2 property)"
            ))
        })
    }
}

/// `staticmethod`, `classmethod` or `property`, by `kind`, called with `parts`.
#[pyfunction]
#[pyo3(name = "_make_descriptor")]
#[pyo3(signature = (kind, *parts))]
pub(crate) fn make_descriptor<'py>(
    kind: &Bound<'py, PyAny>,
    parts: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    DescriptorKind::from_code(kind)?.wrapper_type(kind.py())?.call1(parts)
}
