//! Reading pickles without running them: the opcode decoder, and the inspector
//! that lists what a pickle would import and call, for `flightpickle inspect`
//! and for policies that refuse commands before any code runs.

mod inspect;
mod opcodes;

pub use inspect::{ByValueItem, ByValueKind, GlobalName, Inspection, inspect};
pub use opcodes::DecodeError;

#[cfg(test)]
mod tests;
