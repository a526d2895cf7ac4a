//! The body of POST /multi over an in-memory store (strata_server::fuzzing::multi_body).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_server::fuzzing::multi_body(std::sync::Arc::new(strata_core::MemoryStore::new()), data);
});
