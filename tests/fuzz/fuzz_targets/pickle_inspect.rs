//! Any bytes given to the pickle inspector give a result or an error, never a
//! panic, a stack overflow or unbounded memory.
#![no_main]

use flightpickle_core::pickle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(found) = pickle::inspect(data) {
        assert!(found.length <= data.len());
        for item in &found.by_value {
            assert!(item.bytes <= data.len());
        }
    }
});
