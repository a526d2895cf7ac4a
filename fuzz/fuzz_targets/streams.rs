//! The stream checkpoint file (strata_log::fuzzing::stream_checkpoint).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::stream_checkpoint(data);
});
