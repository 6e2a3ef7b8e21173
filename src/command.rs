//! Spark UDF commands as flightpickle's driver hook writes them, read without
//! running them: what a policy on the JVM side needs to decide on a command.
//!
//! A sealed command is an ordinary pickle that only calls
//! `flightpickle.sealing.load_sealed` on a sealed frame; the frame is verified
//! (signature and digest) and its pickle is inspected. Any other command is
//! inspected as the plain pickle it is.

use std::fmt;

use crate::envelope::{self, EnvelopeError, Header, OpenOptions};
use crate::pickle::{self, DecodeError, Inspection};

/// What a command would do when loaded.
#[derive(Debug)]
pub struct CommandReport {
    /// The verified header of the sealed frame, for a sealed command.
    pub sealed: Option<Header>,
    /// The inspection of the pickle that finally gets unpickled: the frame's
    /// body for a sealed command, the command itself otherwise.
    pub inspection: Inspection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The command, or the pickle inside its frame, is not a readable pickle.
    Unreadable { inside_frame: bool, error: DecodeError },
    /// The sealed frame was refused.
    Envelope(EnvelopeError),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable {
                inside_frame: false,
                error,
            } => write!(f, "the command is not a readable pickle ({error})"),
            Self::Unreadable {
                inside_frame: true,
                error,
            } => write!(
                f,
                "the pickle inside the command's sealed frame is not readable ({error})"
            ),
            Self::Envelope(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for CommandError {}

/// Reads a command; for a sealed one, verifies its frame with `options` first.
/// The Python version is never checked here: the JVM runs no Python.
pub fn inspect_command(command: &[u8], options: &OpenOptions<'_>) -> Result<CommandReport, CommandError> {
    let unreadable = |inside_frame| move |error| CommandError::Unreadable { inside_frame, error };
    let Some(frame) = pickle::sealed_frame(command).map_err(unreadable(false))? else {
        let inspection = pickle::inspect(command).map_err(unreadable(false))?;
        return Ok(CommandReport {
            sealed: None,
            inspection,
        });
    };
    let options = OpenOptions {
        keys: options.keys.clone(),
        require_signature: options.require_signature,
        expected_python: None,
        max_payload_len: options.max_payload_len,
    };
    let opened = envelope::open(frame, &options).map_err(CommandError::Envelope)?;
    let inspection = pickle::inspect(&opened.pickle).map_err(unreadable(true))?;
    Ok(CommandReport {
        sealed: Some(opened.header),
        inspection,
    })
}

/// The sealed frame of a command that PySpark moved into a broadcast, from the
/// broadcast's file: the command's bytes pickled once more as a `bytes` object.
/// `None` when the file holds something else, or a command that is not sealed.
/// Nothing is verified here: the executor service verifies the frame it gets.
pub fn sealed_frame_of_broadcast(file: &[u8]) -> Result<Option<&[u8]>, CommandError> {
    let unreadable = |error| CommandError::Unreadable {
        inside_frame: false,
        error,
    };
    match pickle::pickled_bytes(file).map_err(unreadable)? {
        Some(command) => pickle::sealed_frame(command).map_err(unreadable),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
