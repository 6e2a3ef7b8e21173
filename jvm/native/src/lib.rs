//! Native methods of `io.flightpickle.Native`, loaded into Spark's driver and
//! executor JVMs by the plugin jar.
//!
//! Every entry point runs its body inside `EnvUnowned::with_env`, which catches
//! Rust panics; the error policy turns errors and panics into Java exceptions,
//! so nothing unwinds into the JVM.

use jni::EnvUnowned;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JString};

/// `static native String coreVersion()`: the version of the Rust core in this library.
#[unsafe(no_mangle)]
pub extern "system" fn Java_io_flightpickle_Native_coreVersion<'caller>(
    mut env: EnvUnowned<'caller>,
    _class: JClass<'caller>,
) -> JString<'caller> {
    env.with_env(|env| JString::from_str(env, flightpickle_core::VERSION))
        .resolve::<ThrowRuntimeExAndDefault>()
}
