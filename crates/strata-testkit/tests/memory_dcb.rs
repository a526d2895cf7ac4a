//! The DCB conformance cases on the memory store.

strata_testkit::dcb_conformance_suite!(strata_testkit::conformance::MemoryHarness);
