//! A segment file: header, frames and their bodies (strata_log::fuzzing::segment).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_log::fuzzing::segment(data);
});
