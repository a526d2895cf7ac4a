//! The body of POST /streams/{stream} over an in-memory store (strata_server::fuzzing::append_body).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strata_server::fuzzing::append_body(std::sync::Arc::new(strata_core::MemoryStore::new()), data);
});
