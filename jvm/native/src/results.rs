//! Results as the Java side reads them: an array of strings, each tagged by its
//! first character, so that no name can be mistaken for another field whatever
//! characters a crafted pickle puts in it.
//!
//! - `H<field>=<value>`: a field of a sealed frame's header;
//! - `M<module>`: a module that loading the pickle imports;
//! - `G<module.name>`: a global the pickle names;
//! - `C<module.name>`: a global the pickle calls;
//! - `S<field>=<value>`: a measurement of an executor stream.

use flightpickle_core::envelope::{Header, PythonImplementation};
use flightpickle_core::pickle::Inspection;
use jni::Env;
use jni::objects::{JObjectArray, JString};

use crate::error::NativeError;

pub fn header_entries(header: &Header) -> Vec<String> {
    let implementation = match header.python.implementation {
        PythonImplementation::CPython => "cpython",
        PythonImplementation::PyPy => "pypy",
        PythonImplementation::Other => "other",
    };
    let digest: String = header.digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut entries = vec![
        format!(
            "Hpython={implementation} {}.{}",
            header.python.major, header.python.minor
        ),
        format!("Htarget={}", header.target.name()),
        format!("Hprotocol={}", header.protocol),
        format!("Hwriter_version={}", header.writer_version),
        format!("Hcompressed={}", header.compressed),
        format!("Hpayload_size={}", header.payload_len),
        format!("Hbody_size={}", header.body_len),
        format!("Hdigest={digest}"),
    ];
    if let Some((key_id, _)) = &header.signature {
        entries.push(format!("Hkey_id={key_id}"));
    }
    entries
}

pub fn inspection_entries(inspection: &Inspection) -> Vec<String> {
    let modules = inspection.modules.iter().map(|module| format!("M{module}"));
    let globals = inspection
        .globals
        .keys()
        .map(|global| format!("G{}", global.qualified()));
    let calls = inspection.calls.keys().map(|global| format!("C{}", global.qualified()));
    modules.chain(globals).chain(calls).collect()
}

pub fn to_java<'local>(
    env: &mut Env<'local>,
    entries: &[String],
) -> Result<JObjectArray<'local, JString<'local>>, NativeError> {
    let array = JObjectArray::<JString>::new(env, entries.len(), JString::null())?;
    for (index, entry) in entries.iter().enumerate() {
        let text = JString::from_str(env, entry)?;
        array.set_element(env, index, &text)?;
        // Local references are few per call, but a pickle may name thousands of globals.
        env.delete_local_ref(text);
    }
    Ok(array)
}
