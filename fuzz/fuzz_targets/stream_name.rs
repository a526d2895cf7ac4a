//! A stream name (strata_core::fuzzing::stream_name).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_core::fuzzing::stream_name(data);
});
