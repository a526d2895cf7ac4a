//! The conformance suite and the model-based property test against a real
//! PostgreSQL server: `open` is a fresh schema, `reopen` closes the store and
//! connects again to the same schema. Run in both events layouts; the
//! partitioned one uses tiny partitions so cases span several of them.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::PgHarness;

mod plain {
    use super::*;
    strata_testkit::conformance_suite!(PgHarness::plain());
    strata_testkit::model_based_property_test!(PgHarness::plain());
    strata_testkit::dcb_conformance_suite!(PgHarness::plain());
}

mod partitioned {
    use super::*;
    strata_testkit::conformance_suite!(PgHarness::partitioned(40));
    strata_testkit::dcb_conformance_suite!(PgHarness::partitioned(40));
}
