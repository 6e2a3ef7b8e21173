//! Reading pickles without running them: the opcode decoder, and the inspector
//! that lists what a pickle would import and call, for `flightpickle inspect`
//! and for policies that refuse commands before any code runs.

pub mod code_body;
mod inspect;
pub mod leb128;
mod opcodes;
mod sealed_call;

pub use inspect::{ByValueItem, ByValueKind, GlobalName, Inspection, inspect};
pub use opcodes::DecodeError;
pub use sealed_call::{LOAD_SEALED_MODULE, LOAD_SEALED_NAME, pickled_bytes, sealed_frame};

#[cfg(test)]
mod tests;
