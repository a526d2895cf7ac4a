//! The checkpoint file (strata_log::fuzzing::checkpoint_file).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::checkpoint_file(data);
});
