//! Any bytes given to `envelope::open` are refused or opened, never a panic, a
//! hang or an allocation past the declared-size limit.
#![no_main]

use std::collections::HashMap;

use flightpickle_core::envelope::{self, OpenOptions, PythonImplementation, PythonVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = envelope::parse(frame);
    let lenient = OpenOptions {
        max_payload_len: 1 << 20,
        ..OpenOptions::default()
    };
    let _ = envelope::open(frame, &lenient);
    let strict = OpenOptions {
        keys: HashMap::from([("default", &b"fuzzing key"[..])]),
        require_signature: true,
        expected_python: Some(PythonVersion {
            implementation: PythonImplementation::CPython,
            major: 3,
            minor: 11,
        }),
        max_payload_len: 1 << 20,
    };
    if let Ok(opened) = envelope::open(frame, &strict) {
        // Only a frame signed with the key can pass, and its pickle matches its header.
        assert_eq!(opened.pickle.len() as u64, opened.header.payload_len);
    }
});
