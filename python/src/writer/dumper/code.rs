//! A function's code object, pickled once per code object and replayed.
//!
//! The fields of a code object never change, so their opcodes do not
//! either, but for the memo: the first dump records them with a memo of
//! their own, and every dump (the first included, so that all write the
//! same bytes) copies the recording with each memo read shifted to where
//! the recording's memo starts in this pickle. Memo writes need no
//! shifting at protocol 4 and above (MEMOIZE takes the next index), so
//! lower protocols write the fields as any other tuple.
//!
//! A replay also tells the pickle's memo what the recording memoized: the
//! fields tuple (another function with the same code reads it back) and
//! its strings by text (the function's name, written after, is a read).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::Dumper;
use crate::code_cache::CodeCache;
use crate::reducers::code::code_fields;
use crate::writer::output::Output;

/// The opcodes of a code object's fields, as written with a memo of their own.
struct Recording {
    /// The opcodes, without the memo reads.
    opcodes: Vec<u8>,
    /// Each memo read: where in `opcodes` it belongs, and the index it reads,
    /// counted from the recording's first.
    gets: Vec<(usize, u32)>,
    /// How many indexes the recording memoizes.
    memoized: u32,
    /// The index of the fields tuple itself.
    tuple_index: u32,
    /// The strings memoized by text: a copy of the text, and the index.
    texts: Vec<(Py<PyBytes>, u32)>,
}

static RECORDINGS: CodeCache<Recording> = CodeCache::new();

impl<'py> Dumper<'_, 'py> {
    /// Writes the arguments of `types.CodeType(...)` that rebuild `code`.
    pub(super) fn save_code_fields(&mut self, code: &Bound<'py, PyAny>) -> PyResult<()> {
        let fields = code_fields(code)?;
        if self.proto < 4 {
            return self.save(fields.as_any());
        }
        if let Some(index) = self.memo.get(fields.as_any()) {
            return self.write_get(index);
        }
        let recording = RECORDINGS.get_or_make_shared(code, || self.record(&fields))?;
        self.replay(&recording, &fields)?;
        self.out.opcode_boundary()
    }

    fn record(&self, fields: &Bound<'py, PyTuple>) -> PyResult<Recording> {
        let py = self.py;
        let mut recorder = Dumper::new(py, self.proto, self.state, None, Output::new(py, None)?);
        recorder.names_by_text = 1;
        recorder.left_out_gets = Some(Vec::new());
        recorder.save_object(fields.as_any())?;
        let tuple_index = recorder
            .memo
            .get(fields.as_any())
            .ok_or_else(|| self.error("a code object's fields were not memoized".into()))?;
        let texts = recorder
            .memo
            .texts()
            .map(|(text, index)| (PyBytes::new(py, text).unbind(), index))
            .collect();
        let memoized = recorder.memo.next_index();
        let gets = recorder.left_out_gets.take().unwrap_or_default();
        let opcodes = recorder.out.into_bytes()?.as_bytes().to_vec();
        Ok(Recording {
            opcodes,
            gets,
            memoized,
            tuple_index,
            texts,
        })
    }

    fn replay(&mut self, recording: &Recording, fields: &Bound<'py, PyTuple>) -> PyResult<()> {
        let base = self.memo.next_index();
        let mut copied = 0;
        for &(position, index) in &recording.gets {
            self.out.write(&recording.opcodes[copied..position])?;
            self.write_get(base + index)?;
            copied = position;
        }
        self.out.write(&recording.opcodes[copied..])?;
        self.memo.skip(recording.memoized);
        self.memo.put_at(fields.as_any(), base + recording.tuple_index);
        for (text, index) in &recording.texts {
            let owner = text.bind(self.py);
            if self.memo.get_text(owner.as_bytes()).is_none() {
                self.memo.put_text(owner.as_bytes(), owner.as_any(), base + index);
            }
        }
        Ok(())
    }
}
