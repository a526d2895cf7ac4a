//! A snapshot file (strata_log::fuzzing::snapshot_file).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::snapshot_file(data);
});
