//! Native methods of `io.flightpickle.Native`, loaded into Spark's driver and
//! executor JVMs by the plugin jar.
//!
//! The surface is narrow on purpose: byte arrays and booleans in, strings and
//! arrays of strings out, so the Java side owns every type and the Rust side
//! only converts. Each entry point runs its body inside `EnvUnowned::with_env`,
//! which catches Rust panics; `ThrowNativeException` turns errors and panics
//! into `io.flightpickle.NativeException`, so nothing unwinds into the JVM.

mod error;
mod results;

use std::collections::HashMap;

use flightpickle_core::command;
use flightpickle_core::envelope::{self, OpenOptions};
use flightpickle_core::pickle;
use jni::objects::{JByteArray, JClass, JObjectArray, JString};
use jni::sys::jboolean;
use jni::{Env, EnvUnowned};

use error::{NativeError, ThrowNativeException};

/// `static native String coreVersion()`: the version of the Rust core in this library.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_coreVersion<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
) -> JString<'caller> {
    env.with_env(|env| JString::from_str(env, flightpickle_core::VERSION).map_err(NativeError::from))
        .resolve::<ThrowNativeException>()
}

/// `static native String[] readEnvelope(byte[] frame)`: a frame's header, not verified.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_readEnvelope<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    frame: JByteArray<'caller>,
) -> JObjectArray<'caller, JString<'caller>> {
    env.with_env(|env| {
        let frame = bytes(env, &frame)?;
        let header = envelope::parse(&frame)?;
        results::to_java(env, &results::header_entries(&header))
    })
    .resolve::<ThrowNativeException>()
}

/// `static native String[] verifyEnvelope(byte[] frame, byte[] keyId, byte[] key, boolean requireSignature)`:
/// a frame's header once its signature (as far as the key allows) and digest are verified.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_verifyEnvelope<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    frame: JByteArray<'caller>,
    key_id: JByteArray<'caller>,
    key: JByteArray<'caller>,
    require_signature: jboolean,
) -> JObjectArray<'caller, JString<'caller>> {
    env.with_env(|env| {
        let frame = bytes(env, &frame)?;
        let key = optional_key(env, &key_id, &key)?;
        let options = open_options(&key, require_signature);
        let opened = envelope::open(&frame, &options)?;
        results::to_java(env, &results::header_entries(&opened.header))
    })
    .resolve::<ThrowNativeException>()
}

/// `static native String[] inspectPickle(byte[] pickle)`: what loading a plain pickle imports and calls.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_inspectPickle<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    pickle: JByteArray<'caller>,
) -> JObjectArray<'caller, JString<'caller>> {
    env.with_env(|env| {
        let pickle = bytes(env, &pickle)?;
        let inspection = pickle::inspect(&pickle)?;
        results::to_java(env, &results::inspection_entries(&inspection))
    })
    .resolve::<ThrowNativeException>()
}

/// `static native String[] inspectCommand(byte[] command, byte[] keyId, byte[] key, boolean requireSignature)`:
/// a Spark UDF command; a sealed one is verified and its body inspected.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_inspectCommand<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    command: JByteArray<'caller>,
    key_id: JByteArray<'caller>,
    key: JByteArray<'caller>,
    require_signature: jboolean,
) -> JObjectArray<'caller, JString<'caller>> {
    env.with_env(|env| {
        let command = bytes(env, &command)?;
        let key = optional_key(env, &key_id, &key)?;
        let options = open_options(&key, require_signature);
        let report = command::inspect_command(&command, &options)?;
        let mut entries = report.sealed.as_ref().map(results::header_entries).unwrap_or_default();
        entries.extend(results::inspection_entries(&report.inspection));
        results::to_java(env, &entries)
    })
    .resolve::<ThrowNativeException>()
}

/// `static native void panicForTesting(byte[] message)`: panics with the message, so tests
/// can show that a Rust panic reaches Java as an exception and the JVM lives on.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_panicForTesting<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    message: JByteArray<'caller>,
) {
    env.with_env(|env| -> Result<(), NativeError> {
        let message = String::from_utf8_lossy(&bytes(env, &message)?).into_owned();
        panic!("{message}");
    })
    .resolve::<ThrowNativeException>()
}

fn bytes(env: &Env<'_>, array: &JByteArray<'_>) -> Result<Vec<u8>, NativeError> {
    if array.is_null() {
        return Err(NativeError::invalid_argument("a byte array argument is null"));
    }
    Ok(env.convert_byte_array(array)?)
}

/// A key id and secret; both null for none, and one without the other is a mistake.
fn optional_key(
    env: &Env<'_>,
    key_id: &JByteArray<'_>,
    key: &JByteArray<'_>,
) -> Result<Option<(String, Vec<u8>)>, NativeError> {
    match (key_id.is_null(), key.is_null()) {
        (true, true) => Ok(None),
        (false, false) => {
            let id = String::from_utf8(bytes(env, key_id)?)
                .map_err(|_| NativeError::invalid_argument("the key id is not UTF-8"))?;
            Ok(Some((id, bytes(env, key)?)))
        }
        _ => Err(NativeError::invalid_argument(
            "a key id and a key go together: pass both or neither",
        )),
    }
}

fn open_options(key: &Option<(String, Vec<u8>)>, require_signature: jboolean) -> OpenOptions<'_> {
    OpenOptions {
        keys: key
            .iter()
            .map(|(id, secret)| (id.as_str(), secret.as_slice()))
            .collect::<HashMap<_, _>>(),
        require_signature,
        ..OpenOptions::default()
    }
}
