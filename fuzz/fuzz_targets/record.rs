//! One event record (strata_log::fuzzing::record).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::record(data);
});
