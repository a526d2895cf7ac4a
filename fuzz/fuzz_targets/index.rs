//! An index file of a sealed segment (strata_log::fuzzing::index_file).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::index_file(data);
});
