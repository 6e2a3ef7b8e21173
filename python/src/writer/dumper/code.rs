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
//! The replay shares strings with the rest of the pickle as the writer
//! does (by text): a string of the recording that the pickle already holds
//! becomes a memo read, and its memo write is dropped; the strings it
//! writes, and the fields tuple itself, are added to the pickle's memo.
//! A code object among the constants is recorded as a call of
//! `new_function`, which the replay writes as the pickle's own (a memo
//! read once the pickle has it).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use super::Dumper;
use crate::code_cache::CodeCache;
use crate::reducers::code::{names_blob_field, native_code_fields};
use crate::writer::memo::{Text, TextSlot};
use crate::writer::opcodes::{NONE, REDUCE, TUPLE2};
use crate::writer::output::Output;

/// What a recording notes beside its opcodes, in the order written.
pub(in crate::writer) enum Event {
    /// A memo write (MEMOIZE) ends at `after`.
    Put { after: usize },
    /// A memo read of `index` (counted from the recording's first) belongs
    /// at `at`; it is not in the opcodes.
    Get { at: usize, index: u32 },
    /// One of our reconstructors belongs at `at`; it is not in the
    /// opcodes. The replay writes it as the pickle does, nearly always a
    /// read of the pickle's own memo entry for it: a recording cannot read
    /// that memo, and naming it again would cost the load a `find_class`.
    Reconstructor { at: usize, which: Py<PyAny> },
    /// A string written by text spans `start..end`; its memo write follows.
    Text {
        start: usize,
        end: usize,
        text: Py<PyBytes>,
        /// `text`'s `Text` hash, made once for every replay.
        hash: u64,
    },
}

/// The opcodes of a code object's fields, as written with a memo of their own.
struct Recording {
    opcodes: Vec<u8>,
    events: Vec<Event>,
    /// The recording's index of the fields tuple itself.
    tuple_index: u32,
}

static RECORDINGS: CodeCache<Recording> = CodeCache::new();

impl Recording {
    /// The recording without the memo writes nothing can read: a replay
    /// gives them indexes no other part of the pickle knows (only the
    /// fields tuple and the strings are shared with it), so a write that
    /// the recording itself never reads back only costs the loader a memo
    /// store (a code object's bytecode, line and exception tables, its
    /// constants, names and variable names). Done once per code object,
    /// when it is recorded, so dumps pay nothing for it. None when a read
    /// names an index that was never written.
    fn without_unread_puts(self) -> Option<Recording> {
        let mut read = vec![false; self.put_count()];
        *read.get_mut(self.tuple_index as usize)? = true;
        for event in &self.events {
            if let Event::Get { index, .. } = event {
                *read.get_mut(*index as usize)? = true;
            }
        }
        // Each old index's new one; the dropped MEMOIZE bytes' offsets.
        let mut renumbered = vec![u32::MAX; read.len()];
        let mut dropped = Vec::new();
        let mut kept = 0u32;
        let mut ordinal = 0usize;
        let mut after_text = false;
        for event in &self.events {
            match event {
                Event::Text { .. } => after_text = true,
                Event::Put { after } => {
                    if after_text || read[ordinal] {
                        renumbered[ordinal] = kept;
                        kept += 1;
                    } else {
                        dropped.push(after - 1);
                    }
                    after_text = false;
                    ordinal += 1;
                }
                Event::Get { .. } | Event::Reconstructor { .. } => {}
            }
        }
        Some(self.rewritten(&dropped, &renumbered))
    }

    fn put_count(&self) -> usize {
        self.events
            .iter()
            .filter(|event| matches!(event, Event::Put { .. }))
            .count()
    }

    /// The recording with the bytes at `dropped` (ascending offsets, each a
    /// MEMOIZE) taken out, and memo indexes renumbered.
    fn rewritten(self, dropped: &[usize], renumbered: &[u32]) -> Recording {
        let shift = |offset: usize| offset - dropped.partition_point(|&at| at < offset);
        let mut opcodes = Vec::with_capacity(self.opcodes.len() - dropped.len());
        let mut copied = 0;
        for &at in dropped {
            opcodes.extend_from_slice(&self.opcodes[copied..at]);
            copied = at + 1;
        }
        opcodes.extend_from_slice(&self.opcodes[copied..]);
        let dropped_puts: Vec<usize> = dropped.iter().map(|at| at + 1).collect();
        let events = self
            .events
            .into_iter()
            .filter_map(|event| match event {
                Event::Put { after } if dropped_puts.binary_search(&after).is_ok() => None,
                Event::Put { after } => Some(Event::Put { after: shift(after) }),
                Event::Get { at, index } => Some(Event::Get {
                    at: shift(at),
                    index: renumbered[index as usize],
                }),
                Event::Reconstructor { at, which } => Some(Event::Reconstructor { at: shift(at), which }),
                Event::Text { start, end, text, hash } => Some(Event::Text {
                    start: shift(start),
                    end: shift(end),
                    text,
                    hash,
                }),
            })
            .collect();
        Recording {
            opcodes,
            events,
            tuple_index: renumbered[self.tuple_index as usize],
        }
    }
}

impl<'py> Dumper<'_, 'py> {
    /// Writes the arguments of `types.CodeType(...)` that rebuild `code`,
    /// behind the mark of this Python's version.
    pub(super) fn save_code_fields(&mut self, code: &Bound<'py, PyAny>) -> PyResult<()> {
        let fields = native_code_fields(code)?;
        if self.proto < 4 {
            return self.save(fields.as_any());
        }
        if let Some(index) = self.memo.get(fields.as_any()) {
            return self.write_get(index);
        }
        let recording = RECORDINGS.get_or_make_shared(code, || self.record(&fields))?;
        let mut indexes = std::mem::take(&mut self.replay_indexes);
        indexes.clear();
        let replayed = self.replay(&recording, &fields, &mut indexes);
        self.replay_indexes = indexes;
        replayed?;
        self.out.opcode_boundary()
    }

    fn record(&self, fields: &Bound<'py, PyTuple>) -> PyResult<Recording> {
        let py = self.py;
        let mut recorder = Dumper::new(py, self.proto, self.state, None, Output::new(py, None)?);
        recorder.names_by_text = 1;
        recorder.recording = Some(Vec::new());
        if let Some(blob) = names_blob_field(fields) {
            recorder.name_blob = blob.as_ptr() as usize;
        }
        recorder.save_object(fields.as_any())?;
        let tuple_index = recorder
            .memo
            .get(fields.as_any())
            .ok_or_else(|| self.error("a code object's fields were not memoized".into()))?;
        let events = recorder.recording.take().unwrap_or_default();
        let opcodes = recorder.out.into_bytes()?.as_bytes().to_vec();
        let recording = Recording {
            opcodes,
            events,
            tuple_index,
        };
        recording
            .without_unread_puts()
            .ok_or_else(|| self.error("a recorded code object reads a memo entry it never wrote".into()))
    }

    /// Writes the recording; `indexes` (empty) receives the recording's
    /// memo indexes as this pickle's.
    fn replay(&mut self, recording: &Recording, fields: &Bound<'py, PyTuple>, indexes: &mut Vec<u32>) -> PyResult<()> {
        let py = self.py;
        let opcodes = &recording.opcodes;
        // Sized up front: grown one push at a time, the list cost a
        // dataclass dump ~9k instructions in reallocations.
        indexes.reserve(recording.events.len());
        let mut copied = 0;
        let mut held: Option<u32> = None;
        // A new string's index, taken when its text was looked up: its
        // MEMOIZE is the next event.
        let mut new_text: Option<u32> = None;
        for event in &recording.events {
            match event {
                Event::Text { start, end, text, hash } => {
                    let owner = text.bind(py);
                    match self.memo.find_or_put_text(recorded_text(owner, *hash), owner.as_any()) {
                        TextSlot::Found(index) => {
                            self.out.write(&opcodes[copied..*start])?;
                            self.write_get(index)?;
                            copied = *end;
                            held = Some(index);
                        }
                        TextSlot::New(index) => new_text = Some(index),
                    }
                }
                Event::Put { after } => match (held.take(), new_text.take()) {
                    (Some(index), _) => {
                        // The string's MEMOIZE, right after it, is dropped.
                        copied = *after;
                        indexes.push(index);
                    }
                    (None, Some(index)) => indexes.push(index),
                    (None, None) => indexes.push(self.memo.take_index()),
                },
                Event::Get { at, index } => {
                    self.out.write(&opcodes[copied..*at])?;
                    let index = self.replayed_index(indexes, *index)?;
                    self.write_get(index)?;
                    copied = *at;
                }
                Event::Reconstructor { at, which } => {
                    self.out.write(&opcodes[copied..*at])?;
                    self.save(which.bind(py))?;
                    copied = *at;
                }
            }
        }
        self.out.write(&opcodes[copied..])?;
        let tuple_index = self.replayed_index(indexes, recording.tuple_index)?;
        self.memo.put_at(fields.as_any(), tuple_index);
        Ok(())
    }

    /// A code object among the constants of a code being recorded (a
    /// nested function, a lambda, a 3.11 comprehension), as
    /// `new_function(fields, None)` with the fields in the native shape, so
    /// that a load can reuse it as it does a function's code (and then the
    /// code that holds it, whose constants it is among). Elsewhere a code
    /// object keeps `CodeType(...)`.
    pub(super) fn save_nested_code(&mut self, code: &Bound<'py, PyAny>) -> PyResult<()> {
        let py = self.py;
        let new_function = self.state.reconstructors().new_function(py, "a code object")?.clone();
        let at = self.out.written();
        if let Some(events) = &mut self.recording {
            events.push(Event::Reconstructor {
                at,
                which: new_function.unbind(),
            });
        }
        self.save(native_code_fields(code)?.as_any())?;
        self.out.write(&[NONE, TUPLE2, REDUCE])?;
        self.memoize(code).map(drop)
    }

    fn replayed_index(&self, indexes: &[u32], index: u32) -> PyResult<u32> {
        indexes
            .get(index as usize)
            .copied()
            .ok_or_else(|| self.error("a recorded code object reads a memo entry it never wrote".into()))
    }
}

/// A recorded string as the memo looks it up, with the hash it was
/// recorded with.
fn recorded_text<'a>(text: &'a Bound<'_, PyBytes>, hash: u64) -> Text<'a> {
    Text::with_hash(text.as_bytes(), hash)
}
