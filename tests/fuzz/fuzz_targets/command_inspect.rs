//! Any bytes given to the JVM's command check (a Spark UDF command, sealed or
//! plain) give a report or an error, never a panic; with a key required, no
//! unsigned or wrongly signed frame is ever reported as sealed.
#![no_main]

use std::collections::HashMap;

use flightpickle_core::command;
use flightpickle_core::envelope::OpenOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lenient = OpenOptions::default();
    let _ = command::inspect_command(data, &lenient);
    let strict = OpenOptions {
        keys: HashMap::from([("spark-auth", &b"a key the fuzzer does not know"[..])]),
        require_signature: true,
        ..OpenOptions::default()
    };
    if let Ok(report) = command::inspect_command(data, &strict)
        && let Some(header) = report.sealed
    {
        assert!(
            header.signature.is_some(),
            "an unsigned frame passed a required signature"
        );
    }
});
