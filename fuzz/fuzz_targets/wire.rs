//! The JSON bodies of the API as wire types (strata_wire::fuzzing::bodies).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_wire::fuzzing::bodies(data);
});
