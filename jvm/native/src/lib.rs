//! Native methods of `io.flightpickle.Native`, loaded into Spark's driver and
//! executor JVMs by the plugin jar.
//!
//! The surface is narrow on purpose: byte arrays, numbers and booleans in,
//! strings and arrays of strings out, so the Java side owns every type and the
//! Rust side only converts. Record batches cross as addresses of Arrow C Data
//! Interface structs (`arrow_bridge`), executor streams as opaque handles
//! (`stream`). Each entry point runs its body through `error::guarded`, which
//! catches Rust panics and turns errors and panics into
//! `io.flightpickle.NativeException`, so nothing unwinds into the JVM.

mod arrow_bridge;
mod error;
mod memory;
mod results;
mod stream;

use std::collections::HashMap;

use flightpickle_core::command;
use flightpickle_core::envelope::{self, OpenOptions};
use flightpickle_core::pickle;
use jni::objects::{JByteArray, JClass, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong};
use jni::{Env, EnvUnowned};

use error::{NativeError, guarded};

/// `static native String coreVersion()`: the version of the Rust core in this library.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_coreVersion<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
) -> JString<'caller> {
    guarded(&mut env, |env| {
        JString::from_str(env, flightpickle_core::VERSION).map_err(NativeError::from)
    })
}

/// `static native String[] readEnvelope(byte[] frame)`: a frame's header, not verified.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_readEnvelope<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    frame: JByteArray<'caller>,
) -> JObjectArray<'caller, JString<'caller>> {
    guarded(&mut env, |env| {
        let frame = bytes(env, &frame)?;
        let header = envelope::parse(&frame)?;
        results::to_java(env, &results::header_entries(&header))
    })
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
    guarded(&mut env, |env| {
        let frame = bytes(env, &frame)?;
        let key = optional_key(env, &key_id, &key)?;
        let options = open_options(&key, require_signature);
        let opened = envelope::open(&frame, &options)?;
        results::to_java(env, &results::header_entries(&opened.header))
    })
}

/// `static native String[] inspectPickle(byte[] pickle)`: what loading a plain pickle imports and calls.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_inspectPickle<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    pickle: JByteArray<'caller>,
) -> JObjectArray<'caller, JString<'caller>> {
    guarded(&mut env, |env| {
        let pickle = bytes(env, &pickle)?;
        let inspection = pickle::inspect(&pickle)?;
        results::to_java(env, &results::inspection_entries(&inspection))
    })
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
    guarded(&mut env, |env| {
        let command = bytes(env, &command)?;
        let key = optional_key(env, &key_id, &key)?;
        let options = open_options(&key, require_signature);
        let report = command::inspect_command(&command, &options)?;
        let mut entries = report.sealed.as_ref().map(results::header_entries).unwrap_or_default();
        entries.extend(results::inspection_entries(&report.inspection));
        results::to_java(env, &entries)
    })
}

/// `static native byte[] sealedFrame(byte[] command)`: the sealed frame a sealed command
/// loads, or null for a command that is not sealed.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_sealedFrame<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    command: JByteArray<'caller>,
) -> JByteArray<'caller> {
    guarded(&mut env, |env| {
        let command = bytes(env, &command)?;
        match pickle::sealed_frame(&command)? {
            Some(frame) => Ok(env.byte_array_from_slice(frame)?),
            None => Ok(JByteArray::null()),
        }
    })
}

/// `static native int mallocTrim()`: asks the C library to give freed heap memory back to
/// the operating system; 1 when some was, 0 when none could be, -1 when this C library
/// cannot (not glibc), in which case nothing was done.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_mallocTrim<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
) -> jint {
    guarded(&mut env, |_| Ok(memory::trim().code()))
}

/// `static native void panicForTesting(byte[] message)`: panics with the message, so tests
/// can show that a Rust panic reaches Java as an exception and the JVM lives on.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_panicForTesting<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    message: JByteArray<'caller>,
) {
    guarded(&mut env, |env| {
        let message = String::from_utf8_lossy(&bytes(env, &message)?).into_owned();
        panic!("{message}");
    })
}

fn bytes(env: &Env<'_>, array: &JByteArray<'_>) -> Result<Vec<u8>, NativeError> {
    if array.is_null() {
        return Err(NativeError::invalid_argument("a byte array argument is null"));
    }
    Ok(env.convert_byte_array(array)?)
}

fn optional_bytes(env: &Env<'_>, array: &JByteArray<'_>) -> Result<Option<Vec<u8>>, NativeError> {
    if array.is_null() {
        Ok(None)
    } else {
        bytes(env, array).map(Some)
    }
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

/// `static native String[] broadcastCommandHeader(byte[] path)`: the header (not verified) of
/// the sealed frame in a large command's broadcast file; an error names why there is none.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_broadcastCommandHeader<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    path: JByteArray<'caller>,
) -> JObjectArray<'caller, JString<'caller>> {
    guarded(&mut env, |env| {
        let path = String::from_utf8(bytes(env, &path)?)
            .map_err(|_| NativeError::invalid_argument("the broadcast file path is not UTF-8"))?;
        let frame = stream::frame_of_broadcast_file(std::path::Path::new(&path))
            .map_err(|why| NativeError::invalid_argument(&why))?;
        results::to_java(env, &results::header_entries(&envelope::parse(&frame)?))
    })
}

/// `static native long streamOpen(byte[] endpoint, byte[] token, byte[] tlsCa, int kind,
/// byte[] envelope, byte[] broadcastFile, byte[] digest, byte[] groupKeys, long inputSchema,
/// long outputSchema, int window, long timeoutMillis, long bodyLimit)`: connects to the executor
/// service (a Unix socket path, or a remote pool's grpc:// URI with its optional bearer token and
/// TLS CA certificates; null when there are none) and opens a stream of the sealed function
/// `envelope`, or of the one in a large command's `broadcastFile` (the other is null; the file is
/// read only if the service asks for the function); `groupKeys` are the group key column names,
/// each ended by a NUL byte; the schemas are `ArrowSchema` structs the JVM exported, taken over
/// by this call.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_io_flightpickle_Native_streamOpen<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    endpoint: JByteArray<'caller>,
    token: JByteArray<'caller>,
    tls_ca: JByteArray<'caller>,
    kind: jint,
    envelope: JByteArray<'caller>,
    broadcast_file: JByteArray<'caller>,
    digest: JByteArray<'caller>,
    group_keys: JByteArray<'caller>,
    input_schema: jlong,
    output_schema: jlong,
    window: jint,
    timeout_millis: jlong,
    body_limit: jlong,
) -> jlong {
    guarded(&mut env, |env| {
        stream::open(stream::OpenRequest {
            endpoint: bytes(env, &endpoint)?,
            token: optional_bytes(env, &token)?,
            tls_ca: optional_bytes(env, &tls_ca)?,
            kind,
            envelope: optional_bytes(env, &envelope)?,
            broadcast_file: optional_bytes(env, &broadcast_file)?,
            digest: bytes(env, &digest)?,
            group_keys: bytes(env, &group_keys)?,
            input_schema,
            output_schema,
            window,
            timeout_millis,
            body_limit,
        })
    })
}

/// `static native void streamPush(long stream, long array, long schema)`: sends the batch
/// exported into the two structs; its buffers are released before this returns.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamPush<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    array: jlong,
    schema: jlong,
) {
    guarded(&mut env, |_| stream::push(handle, array, schema))
}

/// `static native void streamFinish(long stream)`: every input batch was pushed.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamFinish<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) {
    guarded(&mut env, |_| stream::finish(handle))
}

/// `static native boolean streamPull(long stream, long array, long schema, boolean wait)`: the
/// next result batch exported into the two (empty) structs; false at the end of the results
/// when waiting, false when none has arrived yet when not.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamPull<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
    array: jlong,
    schema: jlong,
    wait: jboolean,
) -> jboolean {
    guarded(&mut env, |_| stream::pull(handle, array, schema, wait))
}

/// `static native String[] streamStats(long stream)`: what the service measured serving the
/// stream, as `S<field>=<value>` entries, once its final status arrived; empty before, or when
/// the service sent none.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamStats<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) -> JObjectArray<'caller, JString<'caller>> {
    guarded(&mut env, |env| results::to_java(env, &stream::stats(handle)?))
}

/// `static native void streamCancel(long stream)`: cancels the stream from another thread; the
/// owner's blocked or next call fails with kind `cancelled`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamCancel<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) {
    guarded(&mut env, |_| stream::cancel(handle))
}

/// `static native void streamClose(long stream)`: closes the connection and frees the stream.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_streamClose<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    handle: jlong,
) {
    guarded(&mut env, |_| {
        stream::close(handle);
        Ok(())
    })
}

/// `static native void arrowExport(long struct, Object privateData, boolean isArray)`: Arrow
/// Java's `JniWrapper.exportArray`/`exportSchema`, see `arrow_bridge`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_arrowExport<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    address: jlong,
    private_data: JObject<'caller>,
    is_array: jboolean,
) {
    guarded(&mut env, |env| {
        arrow_bridge::export(env, address, &private_data, is_array)
    })
}

/// `static native void arrowRelease(long struct, boolean isArray)`: Arrow Java's
/// `JniWrapper.releaseArray`/`releaseSchema`: calls the struct's release callback.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_arrowRelease<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
    address: jlong,
    is_array: jboolean,
) {
    guarded(&mut env, |_| arrow_bridge::release(address, is_array))
}
