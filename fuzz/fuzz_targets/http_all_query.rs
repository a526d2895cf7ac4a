//! The $all query and filter over an in-memory store (strata_server::fuzzing::all_query).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_server::fuzzing::all_query(std::sync::Arc::new(strata_core::MemoryStore::new()), data);
});
