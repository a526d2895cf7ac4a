//! The consumer-group conformance suite: the executable definition of the
//! [`ConsumerGroups`] contract, for any implementation over any store.
//!
//! An implementation plugs in through a [`GroupsHarness`] and runs every case
//! with [`group_conformance_suite!`](crate::group_conformance_suite), one
//! `#[test]` per case:
//!
//! ```
//! use strata_testkit::conformance::MemoryHarness;
//! use strata_testkit::groups::LocalHarness;
//! strata_testkit::group_conformance_suite!(LocalHarness(MemoryHarness));
//! # fn main() {}
//! ```
//!
//! Sizes are small (at most a few thousand events per case) so the suite
//! runs in CI on every backend; the 100,000-event runs belong to the bench.

// These functions are test assertions: a panic is how a case reports that
// the implementation broke the contract.
#![allow(clippy::unwrap_used)]

mod cases;
mod support;

use async_trait::async_trait;
use strata_core::group::{ConsumerGroups, LocalGroups};
use strata_core::EventStore;

use crate::conformance::StoreHarness;

pub use cases::*;

/// How a consumer-group implementation plugs into the suite.
#[async_trait]
pub trait GroupsHarness: Send + Sync + 'static {
    /// The store the groups read from.
    type Store: EventStore + Clone + 'static;
    /// The implementation under test.
    type Groups: ConsumerGroups + 'static;

    /// A fresh, empty store.
    async fn open_store(&self) -> Self::Store;

    /// Close `store` and open the same data again (durable backends); a
    /// memory store returns it unchanged. Called only after every groups
    /// value over it was dropped.
    async fn reopen_store(&self, store: Self::Store) -> Self::Store;

    /// The groups implementation over `store`, as a new process would open
    /// it: every group state it knows comes from durable storage.
    async fn groups(&self, store: &Self::Store) -> Self::Groups;
}

/// [`LocalGroups`] over the stores of any [`StoreHarness`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalHarness<H>(pub H);

#[async_trait]
impl<H> GroupsHarness for LocalHarness<H>
where
    H: StoreHarness,
    H::Store: Clone + 'static,
{
    type Store = H::Store;
    type Groups = LocalGroups<H::Store>;

    async fn open_store(&self) -> H::Store {
        self.0.open().await
    }

    async fn reopen_store(&self, store: H::Store) -> H::Store {
        self.0.reopen(store).await
    }

    async fn groups(&self, store: &H::Store) -> LocalGroups<H::Store> {
        LocalGroups::new(store.clone())
    }
}

/// Expands into one test per group conformance case, run against the
/// harness `$harness` builds (evaluated once per case inside the case's
/// runtime). Each test runs on a 4-worker runtime and fails after
/// [`case_timeout`] ([`CASE_TIMEOUT`](crate::conformance::CASE_TIMEOUT) at
/// the CI size). Invoke it once per
/// module.
#[macro_export]
macro_rules! group_conformance_suite {
    ($harness:expr $(,)?) => {
        $crate::__group_conformance_cases! {
            $harness;
            round_robin_shares_every_event_once,
            pinned_shares_every_event_once_in_stream_order,
            silent_consumer_leases_reach_others,
            leave_hands_leases_back_at_once,
            single_strategy_fails_over,
            retry_then_park_then_replay,
            delete_parked_removes_from_the_list,
            skip_settles_without_parking,
            restart_delivers_only_unacked_events,
            definitions_are_durable_validated_updatable_deletable,
            source_change_is_refused,
            missing_group_is_group_not_found,
            system_events_are_never_delivered,
            start_end_delivers_only_new_events,
            start_after_position_is_exclusive,
            start_from_version_on_a_stream_source,
            status_reports_checkpoint_in_flight_parked_consumers_acked,
            max_in_flight_bounds_each_consumer,
            settling_foreign_or_unknown_ids_does_nothing,
        }
    };
}

/// Implementation detail of [`group_conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __group_conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::__private::run_case_within(
                    stringify!($case),
                    $crate::groups::case_timeout(),
                    async {
                    let harness = $harness;
                    $crate::groups::$case(&harness).await;
                    },
                );
            }
        )*
    };
}
