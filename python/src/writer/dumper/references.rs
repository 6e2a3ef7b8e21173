//! Objects written by reference: a global's module and qualified name
//! (or `copyreg`'s extension code), and the names themselves.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple, PyType};

use super::Dumper;
use super::scalars::str_hash;
use crate::byvalue::Reference;
use crate::objects;
use crate::reconstruct::HOME;
use crate::target::Target;
use crate::writer::globals::{self, GlobalName};
use crate::writer::memo::Text;
use crate::writer::opcodes::*;

impl<'py> Dumper<'_, 'py> {
    pub(super) fn save_global(&mut self, obj: &Bound<'py, PyAny>, name: Option<&Bound<'py, PyString>>) -> PyResult<()> {
        let global = globals::resolve(obj, name)?;
        self.write_global(obj, global)
    }

    /// A global found by the by-value decision, written without looking
    /// it up again when that lookup settled everything `save_global`
    /// checks: the module named by the object's own `__module__` (a str),
    /// and, before protocol 4, a name without dots (which needs no parent).
    pub(super) fn save_found_global(&mut self, obj: &Bound<'py, PyAny>, found: Reference<'py>) -> PyResult<()> {
        let module_name = match found.module_name.cast_exact::<PyString>() {
            Ok(name) if !found.module_searched => name.clone(),
            _ => return self.save_global(obj, None),
        };
        if self.proto < 4 && found.qualname.to_str()?.contains('.') {
            return self.save_global(obj, None);
        }
        let global = GlobalName {
            module_name,
            qualname: found.qualname,
            parent: None,
            last_name: None,
        };
        self.write_global(obj, global)
    }

    pub(super) fn write_global(&mut self, obj: &Bound<'py, PyAny>, global: GlobalName<'py>) -> PyResult<()> {
        if let Some(code) = globals::extension_code(&global)? {
            return self.write_extension(obj, code);
        }
        if self.proto >= 4 && self.is_builtins_class(obj, &global)? {
            // `builtins_class(name)`: see that reconstructor for why.
            let make = self.state.reconstructors().builtins_class(self.py, "a builtin class")?;
            let args = PyTuple::new(self.py, [&global.qualname])?;
            let reduced = PyTuple::new(self.py, [make.clone(), args.into_any()])?;
            self.save_reduce(&reduced, None)?;
            return self.memoize(obj).map(drop);
        }
        if self.proto >= 4 {
            self.save_name(&global.module_name)?;
            self.save_qualname(&global)?;
            self.out.write(&[STACK_GLOBAL])?;
        } else if let GlobalName {
            parent: Some(parent),
            last_name: Some(last_name),
            ..
        } = &global
        {
            let getattr = objects::getattr_fn(self.py)?;
            let args = PyTuple::new(self.py, [parent.as_any(), last_name.as_any()])?;
            let reduced = PyTuple::new(self.py, [getattr.clone(), args.into_any()])?;
            self.save_reduce(&reduced, None)?;
        } else {
            self.write_text_global(&global)?;
        }
        self.memoize(obj).map(drop)
    }

    /// Whether the native target writes `obj` as `builtins_class(name)`: a
    /// class that `builtins` holds under a name without dots, inside a
    /// by-value part (whose loading needs flightpickle anyway; plain data
    /// keeps pickle's bytes, which load without it).
    fn is_builtins_class(&self, obj: &Bound<'py, PyAny>, global: &GlobalName<'py>) -> PyResult<bool> {
        Ok(self.by_value_parts > 0
            && self.recording.is_none()
            && self.state.reconstructors().target == Target::Native
            && global.parent.is_none()
            && obj.is_instance_of::<PyType>()
            && global.module_name.to_cow()? == "builtins")
    }

    /// `GLOBAL module\nname\n`, the form before protocol 4.
    fn write_text_global(&mut self, global: &GlobalName<'py>) -> PyResult<()> {
        let (module, name) = if self.proto < 3 {
            globals::python2_names(&global.module_name, &global.qualname)?
        } else {
            (
                global.module_name.clone().into_any(),
                global.qualname.clone().into_any(),
            )
        };
        let mut op = vec![GLOBAL];
        for part in [&module, &name] {
            let text = part.cast::<PyString>()?.to_str()?;
            if self.proto < 3 && !text.is_ascii() {
                return Err(self.error(format!(
                    "can't pickle module identifier '{text}' using pickle protocol {}",
                    self.proto
                )));
            }
            op.extend_from_slice(text.as_bytes());
            op.push(b'\n');
        }
        self.out.write(&op)
    }

    fn write_extension(&mut self, obj: &Bound<'py, PyAny>, code: i64) -> PyResult<()> {
        match code {
            1..=0xff => self.out.write(&[EXT1, code as u8]),
            0x100..=0xffff => {
                let [low, high] = (code as u16).to_le_bytes();
                self.out.write(&[EXT2, low, high])
            }
            0x1_0000..=0x7fff_ffff => {
                let mut op = [EXT4; 5];
                op[1..].copy_from_slice(&(code as u32).to_le_bytes());
                self.out.write(&op)
            }
            _ => Err(self.error(format!(
                "Can't pickle {}: extension code {code} is out of range",
                obj.repr()?
            ))),
        }
    }

    /// A global's qualified name. The name of one of our reconstructors,
    /// inside by-value parts, is read back when the pickle holds its text
    /// already, else written with no memo entry: the global itself is
    /// memoized and met again as a read of the whole, so only the same
    /// text elsewhere could read the name, and such a text is then written
    /// again. The memo entry cost the unpickler a put and its release, and
    /// the writer an entry in its text table. Other globals keep the C
    /// pickler's memo entries (a builtin type reduced as a class is still
    /// written as pickle writes it).
    fn save_qualname(&mut self, global: &GlobalName<'py>) -> PyResult<()> {
        let name = &global.qualname;
        if self.names_by_text == 0 || self.recording.is_some() || global.module_name.to_str()? != HOME {
            return self.save_name(name);
        }
        let Ok(text) = name.to_str() else {
            return self.save_name(name);
        };
        if let Some(index) = self.memo.text_at_address(name.as_any()) {
            return self.write_get(index);
        }
        if let Some(index) = self
            .memo
            .get_text(Text::with_hash(text.as_bytes(), str_hash(name.as_any())))
        {
            return self.write_get(index);
        }
        self.write_str_payload(name.as_any(), text.as_bytes())
    }

    /// A module or qualified name. By text only inside by-value parts:
    /// elsewhere the bytes stay those of the C pickler.
    fn save_name(&mut self, name: &Bound<'py, PyString>) -> PyResult<()> {
        if self.names_by_text > 0 {
            return self.save_str(name.as_any(), true);
        }
        match self.memo.get(name.as_any()) {
            Some(index) => self.write_get(index),
            None => self.save_str(name.as_any(), false),
        }
    }
}
