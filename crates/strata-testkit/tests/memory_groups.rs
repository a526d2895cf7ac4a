//! The consumer-group conformance suite: `LocalGroups` over `MemoryStore`.

use strata_testkit::conformance::MemoryHarness;
use strata_testkit::groups::LocalHarness;

strata_testkit::group_conformance_suite!(LocalHarness(MemoryHarness));
