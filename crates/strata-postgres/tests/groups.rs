//! The consumer-group conformance suite on PostgreSQL: `LocalGroups` over
//! `PostgresStore` (a fresh schema per case; a restart closes the store and
//! connects again).

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use common::PgHarness;
use strata_testkit::groups::LocalHarness;

mod local_plain {
    use super::*;
    strata_testkit::group_conformance_suite!(LocalHarness(PgHarness::plain()));
}
