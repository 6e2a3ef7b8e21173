//! How failures cross into the JVM: as `io.flightpickle.NativeException`, whose
//! message starts with a kind in brackets (`[bad_signature] ...`) that the Java
//! side reads back, followed by the core's own message.

use std::any::Any;
use std::fmt;

use flightpickle_core::command::CommandError;
use flightpickle_core::envelope::EnvelopeError;
use flightpickle_core::pickle::DecodeError;
use flightpickle_core::transport::client::ClientError;
use jni::errors::ErrorPolicy;
use jni::{Env, EnvUnowned};

const EXCEPTION_CLASS: &str = "io/flightpickle/NativeException";

/// An error on its way to Java: a kind the Java side can act on, and a message for people.
#[derive(Debug)]
pub struct NativeError {
    kind: &'static str,
    message: String,
}

impl NativeError {
    pub fn new(kind: &'static str, message: String) -> Self {
        Self { kind, message }
    }

    pub fn invalid_argument(message: &str) -> Self {
        Self {
            kind: "invalid_argument",
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for NativeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.kind, self.message)
    }
}

impl std::error::Error for NativeError {}

impl From<EnvelopeError> for NativeError {
    fn from(error: EnvelopeError) -> Self {
        Self {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl From<DecodeError> for NativeError {
    fn from(error: DecodeError) -> Self {
        Self {
            kind: "unreadable_pickle",
            message: format!("not a readable pickle: {error}"),
        }
    }
}

impl From<CommandError> for NativeError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Envelope(refusal) => refusal.into(),
            unreadable @ CommandError::Unreadable { .. } => Self {
                kind: "unreadable_pickle",
                message: unreadable.to_string(),
            },
        }
    }
}

impl From<ClientError> for NativeError {
    fn from(error: ClientError) -> Self {
        Self {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

impl From<jni::errors::Error> for NativeError {
    fn from(error: jni::errors::Error) -> Self {
        Self {
            kind: "jni",
            message: format!("JNI call failed: {error}"),
        }
    }
}

/// Runs the body of a native method: a panic is caught inside `with_env`, and an error or a
/// panic becomes a pending `NativeException` (see `ThrowNativeException`), so every entry point
/// returns to the JVM normally and nothing unwinds across the boundary.
pub fn guarded<'local, T: Default + 'local>(
    env: &mut EnvUnowned<'local>,
    body: impl FnOnce(&mut Env<'local>) -> Result<T, NativeError>,
) -> T {
    env.with_env(body).resolve::<ThrowNativeException>()
}

/// Throws a `NativeException` for an error or a panic, and returns null/0/false to the JVM,
/// which sees the pending exception first. An exception already pending (from a JNI
/// call that failed inside the JVM) is left to propagate as it is.
#[derive(Debug, Default)]
pub struct ThrowNativeException;

impl<T: Default> ErrorPolicy<T, NativeError> for ThrowNativeException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut Self::Captures<'unowned_env_local, 'native_method>,
        error: NativeError,
    ) -> jni::errors::Result<T> {
        throw(env, &error.to_string());
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut Self::Captures<'unowned_env_local, 'native_method>,
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        throw(
            env,
            &format!(
                "[panic] Rust panic in the flightpickle native library: {}",
                panic_message(payload.as_ref())
            ),
        );
        Ok(T::default())
    }
}

fn throw(env: &mut Env<'_>, message: &str) {
    if env.exception_check() {
        return;
    }
    // throw_new reports the exception it raised as an Err; it is pending either way.
    let _ = env.throw_new(
        jni::strings::JNIString::from(EXCEPTION_CLASS),
        jni::strings::JNIString::from(message),
    );
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}
