//! Running code that may panic on a peer's bytes, as an error and in silence.
//!
//! Some of arrow's own checks assert instead of returning an error. The
//! transport catches such a panic and refuses the batch, but the process's
//! panic hook runs before the unwinding reaches the catch: without this
//! module every malformed batch a peer sent would print "thread panicked at
//! ..." and a backtrace hint on the stderr of the service or the JVM, for a
//! failure that was handled. The hook installed here stays silent while the
//! current thread is inside [`catch_silently`] and hands every other panic to
//! the hook it replaced, so panics elsewhere in the process are reported as
//! before.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Runs `work`; a panic inside it becomes `Err` with the panic's message and
/// is not reported by the panic hook.
pub fn catch_silently<T>(work: impl FnOnce() -> T) -> Result<T, String> {
    HOOK.call_once(install_hook);
    let was_catching = CATCHING.with(|catching| catching.replace(true));
    let outcome = panic::catch_unwind(AssertUnwindSafe(work));
    CATCHING.with(|catching| catching.set(was_catching));
    outcome.map_err(|payload| message_of(payload.as_ref()))
}

fn install_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !CATCHING.with(Cell::get) {
            previous(info);
        }
    }));
}

fn message_of(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "no reason given".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::thread::{self, ThreadId};

    // The threads the test hook was called on; tests run in parallel, so
    // each looks only for its own thread.
    static REPORTED: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());
    static RECORDING_HOOK: Once = Once::new();

    // Records every report that gets past the silent hook. Another test in
    // this binary may have installed the silent hook already, under the
    // recording one; a second silent layer on top keeps the order these
    // tests need, and is what a process that installed it twice would see.
    fn record_reports() {
        RECORDING_HOOK.call_once(|| {
            let previous = panic::take_hook();
            panic::set_hook(Box::new(move |info| {
                REPORTED.lock().unwrap().push(thread::current().id());
                previous(info);
            }));
            install_hook();
        });
    }

    fn reported_here() -> bool {
        REPORTED.lock().unwrap().contains(&thread::current().id())
    }

    #[test]
    fn a_panic_inside_is_an_error_with_its_message_and_no_report() {
        record_reports();
        let outcome = thread::spawn(|| {
            let outcome: Result<(), String> = catch_silently(|| panic!("offsets of {} bytes", 17));
            (outcome, reported_here())
        })
        .join()
        .unwrap();
        assert_eq!(outcome, (Err("offsets of 17 bytes".to_string()), false));
    }

    #[test]
    fn a_panic_outside_is_still_reported_after_a_silent_one() {
        record_reports();
        let reported = thread::spawn(|| {
            let _ = catch_silently(|| panic!("silent"));
            let loud = panic::catch_unwind(|| panic!("loud"));
            assert!(loud.is_err());
            reported_here()
        })
        .join()
        .unwrap();
        assert!(
            reported,
            "a panic outside catch_silently must reach the hook it replaced"
        );
    }

    #[test]
    fn nested_catches_restore_the_outer_silence() {
        record_reports();
        let outcome = thread::spawn(|| {
            let inner = catch_silently(|| catch_silently(|| panic!("inner")));
            let after_inner = catch_silently(|| panic!("outer"));
            (inner, after_inner, reported_here())
        })
        .join()
        .unwrap();
        assert_eq!(outcome.0, Ok(Err("inner".to_string())));
        assert_eq!(outcome.1, Err("outer".to_string()));
        assert!(!outcome.2);
    }

    #[test]
    fn work_that_does_not_panic_gives_its_value() {
        assert_eq!(catch_silently(|| 42), Ok(42));
    }
}
