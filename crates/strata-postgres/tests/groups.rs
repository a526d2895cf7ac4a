//! The consumer-group conformance suite on PostgreSQL: `LocalGroups` over
//! `PostgresStore` (a fresh schema per case; a restart closes the store and
//! connects again), then `PgGroups` in both events layouts.

// Tests assert by panicking.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{HarnessStore, PgHarness};
use strata_core::group::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupStatus,
    LocalGroups, NackAction, ParkedMessage, SettleReport,
};
use strata_core::{async_trait, MemoryStore, Position, Result};
use strata_postgres::PgGroups;
use strata_testkit::conformance::StoreHarness;
use strata_testkit::groups::{GroupsHarness, LocalHarness};

mod local_plain {
    use super::*;
    strata_testkit::group_conformance_suite!(LocalHarness(PgHarness::plain()));
}

mod pg_plain {
    use super::*;
    strata_testkit::group_conformance_suite!(PgGroupsHarness(PgHarness::plain()));
}

mod pg_partitioned {
    use super::*;
    // As many partitions at a by-hand size as in CI (25): a query over a
    // range of positions locks every partition the range may reach.
    strata_testkit::group_conformance_suite!(PgGroupsHarness(PgHarness::partitioned(
        (strata_testkit::groups::sharing_events() as u64 / 25).max(40)
    )));
}

/// `PgGroups` over the stores of a [`PgHarness`]; `LocalGroups` over the
/// stand-in memory store when no server answers (the case is loudly
/// skipped by the harness).
pub struct PgGroupsHarness(PgHarness);

/// The groups under test.
pub enum Groups {
    /// The real thing.
    Pg(PgGroups),
    /// Stand-in when the server is missing.
    Skipped(LocalGroups<MemoryStore>),
}

impl Groups {
    fn inner(&self) -> &dyn ConsumerGroups {
        match self {
            Groups::Pg(g) => g,
            Groups::Skipped(g) => g,
        }
    }
}

#[async_trait]
impl GroupsHarness for PgGroupsHarness {
    type Store = HarnessStore;
    type Groups = Groups;

    async fn open_store(&self) -> HarnessStore {
        self.0.open().await
    }

    async fn reopen_store(&self, store: HarnessStore) -> HarnessStore {
        self.0.reopen(store).await
    }

    async fn groups(&self, store: &HarnessStore) -> Groups {
        match store {
            HarnessStore::Pg(s) => Groups::Pg(PgGroups::new(s.clone())),
            HarnessStore::Skipped(s) => Groups::Skipped(LocalGroups::new(s.clone())),
        }
    }
}

#[async_trait]
impl ConsumerGroups for Groups {
    async fn put_group(&self, name: &GroupName, settings: GroupSettings) -> Result<GroupStatus> {
        self.inner().put_group(name, settings).await
    }
    async fn list_groups(&self) -> Result<Vec<GroupStatus>> {
        self.inner().list_groups().await
    }
    async fn group_status(&self, name: &GroupName) -> Result<Option<GroupStatus>> {
        self.inner().group_status(name).await
    }
    async fn delete_group(&self, name: &GroupName) -> Result<bool> {
        self.inner().delete_group(name).await
    }
    async fn read(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        self.inner().read(name, consumer, max, wait).await
    }
    async fn ack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport> {
        self.inner().ack(name, consumer, ids).await
    }
    async fn nack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport> {
        self.inner().nack(name, consumer, ids, action, reason).await
    }
    async fn leave(&self, name: &GroupName, consumer: &ConsumerId) -> Result<()> {
        self.inner().leave(name, consumer).await
    }
    async fn parked(&self, name: &GroupName, limit: usize) -> Result<Vec<ParkedMessage>> {
        self.inner().parked(name, limit).await
    }
    async fn replay_parked(&self, name: &GroupName, limit: usize) -> Result<u64> {
        self.inner().replay_parked(name, limit).await
    }
    async fn delete_parked(&self, name: &GroupName, positions: &[Position]) -> Result<u64> {
        self.inner().delete_parked(name, positions).await
    }
}
