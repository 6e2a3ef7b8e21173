//! staticmethod, classmethod and property objects in the native target:
//! one call, `make_descriptor(kind, *parts)` (see
//! `reconstruct/descriptors.rs`), written straight from the object's
//! attributes, without a reduce tuple to walk.

use pyo3::intern;
use pyo3::prelude::*;

use super::Dumper;
use crate::reconstruct::descriptors::DescriptorKind;
use crate::writer::opcodes::*;

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_descriptor(&mut self, descriptor: &Bound<'py, PyAny>, kind: DescriptorKind) -> PyResult<()> {
        let py = self.py;
        let parts = descriptor_parts(descriptor, kind)?;
        self.save(self.state.reconstructors().make_descriptor(py, "a descriptor")?)?;
        let arg_count = 1 + parts.len();
        if arg_count > 3 {
            self.out.write(&[MARK])?;
        }
        self.out.write(&[BININT1, kind.code()])?;
        for part in &parts {
            self.save(part)?;
        }
        let make_tuple = if arg_count > 3 {
            TUPLE
        } else {
            TUPLE1 + arg_count as u8 - 1
        };
        self.out.write(&[make_tuple, REDUCE])?;
        self.memoize_made(descriptor).map(drop)
    }
}

/// What the wrapper type is called with: the function, or a property's
/// getter, setter, deleter and doc, less the trailing Nones (the defaults).
fn descriptor_parts<'py>(descriptor: &Bound<'py, PyAny>, kind: DescriptorKind) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = descriptor.py();
    if kind != DescriptorKind::Property {
        return Ok(vec![descriptor.getattr(intern!(py, "__func__"))?]);
    }
    let mut parts = Vec::with_capacity(4);
    for name in [
        intern!(py, "fget"),
        intern!(py, "fset"),
        intern!(py, "fdel"),
        intern!(py, "__doc__"),
    ] {
        parts.push(descriptor.getattr(name)?);
    }
    while parts.last().is_some_and(|part| part.is_none()) {
        parts.pop();
    }
    Ok(parts)
}
