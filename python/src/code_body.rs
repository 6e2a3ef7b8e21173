//! A code object's bundled fields in the native function shape:
//! `(mark, body, co_consts, names blob, co_filename)`, where the body (see
//! `flightpickle_core::pickle::code_body`) holds the counts, the first line
//! number, the bytecode, the line table, the name, the qualname and the
//! exception table, and the names blob the four name tuples (see
//! `name_blob`). The marked fields of the release before had thirteen.
//!
//! Why: each field costs the unpickler an opcode, a bytes object or str
//! is also made (a str decoded) and later freed, and a load that finds the
//! code object an earlier load made (see `reconstruct::loaded_code`)
//! compares every field. A function's load is mostly such a load. The
//! constants and the file name stay fields of their own: they may be any
//! object, and other code objects of the pickle share the file name. Only
//! the load that makes the code object takes the body apart.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

pub(crate) use flightpickle_core::pickle::code_body::CodeBody;

/// Items of bundled fields, and where each is.
pub(crate) const FIELDS: usize = 5;
pub(crate) const BODY: usize = 1;
pub(crate) const CONSTS: usize = 2;
pub(crate) const NAMES: usize = 3;
pub(crate) const FILENAME: usize = 4;

/// Takes `body` apart; a ValueError if it is malformed.
pub(crate) fn decode(body: &[u8]) -> PyResult<CodeBody<'_>> {
    CodeBody::decode(body).map_err(|what| PyValueError::new_err(format!("a code object's body is malformed: {what}")))
}

/// Whether `fields` (behind a mark) are bundled: five items, a bytes
/// object second. The marked fields have thirteen or more.
pub(crate) fn is_bundled(fields: &Bound<'_, PyTuple>) -> bool {
    fields.len() == FIELDS
        && fields
            .get_borrowed_item(BODY)
            .is_ok_and(|body| body.is_exact_instance_of::<PyBytes>())
}
