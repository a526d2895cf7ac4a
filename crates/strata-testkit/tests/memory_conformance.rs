//! The conformance suite and the model-based property test against
//! `strata_core::MemoryStore`.

strata_testkit::conformance_suite!(strata_testkit::conformance::MemoryHarness);

strata_testkit::model_based_property_test!(strata_testkit::conformance::MemoryHarness);
