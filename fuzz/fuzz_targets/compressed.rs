//! A compressed segment (strata_log::fuzzing::compressed_segment).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::compressed_segment(data);
});
