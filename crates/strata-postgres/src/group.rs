//! Consumer groups shared by every process on one database: [`PgGroups`].
//!
//! Group definitions, the claim cursor, one row per claimed unsettled event
//! (free or leased), the parked list and the consumers' liveness live in
//! tables (migration 4), so several processes pointed at one schema share a
//! group without a server. Leases are taken with `FOR UPDATE SKIP LOCKED`;
//! the isolation argument is in `docs/postgres.md` ("Consumer groups").

mod admin;
mod lease;
mod settle;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Object};
use strata_core::group::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupStatus,
    NackAction, ParkedMessage, SettleReport, MAX_READ_MESSAGES, MAX_READ_WAIT, MAX_REASON_BYTES,
    MAX_SETTLE_IDS,
};
use strata_core::{Error, Position, Result};
use tokio_postgres::Statement;

use crate::error::PgError;
use crate::sql::render;
use crate::store::PostgresStore;

/// The most events one claim moves from the source into the group's rows.
pub const GROUP_CLAIM_EVENTS: usize = 256;

/// A claim runs when fewer free rows than this are ready in the group
/// (rows waiting out a retry back-off do not count).
pub const GROUP_CLAIM_LOW_WATER: i64 = 128;

/// The most candidate rows a pinned lease looks at to fill a read.
pub const GROUP_PINNED_CANDIDATES: i64 = 1_000;

/// Under `pinned`, claims run while the group holds fewer rows than this
/// (free, leased or retrying), instead of [`GROUP_CLAIM_LOW_WATER`] free
/// ones: only a stream's first unsettled row is leasable, so a run of one
/// stream's events must not fill the group and starve the other streams.
pub const GROUP_PINNED_WINDOW: i64 = 4_096;

/// The most parked messages one `parked` or `replay_parked` call handles
/// (a larger `limit` is cut to this).
pub const GROUP_PARKED_PAGE: usize = 10_000;

/// A consumer not seen for this long is forgotten (its row removed from
/// `group_consumers` by the next claim); it may come back any time.
pub const GROUP_FORGET_CONSUMER_SECS: i64 = 3_600;

/// The longest a waiting `read` sleeps between attempts when no
/// notification comes (leases expire, back-offs end and other processes
/// settle without notifying).
pub const GROUP_WAIT_POLL_MS: u64 = 50;

/// Consumer groups stored in PostgreSQL beside the events of a
/// [`PostgresStore`]; every process with a store on the same schema shares
/// them.
#[derive(Clone)]
pub struct PgGroups {
    store: PostgresStore,
}

impl PgGroups {
    /// Groups over `store`'s schema (migrated by the store's connect).
    pub fn new(store: PostgresStore) -> Self {
        Self { store }
    }

    /// The store the groups read from.
    pub fn store(&self) -> &PostgresStore {
        &self.store
    }

    /// A statement rendered for this schema.
    fn sql(&self, template: &str) -> String {
        render(template, self.store.schema())
    }

    /// A statement rendered for this schema, prepared once per connection
    /// (one round trip per statement run instead of two).
    async fn prepared(&self, client: &impl GenericClient, template: &str) -> Result<Statement> {
        client
            .prepare_cached(&self.sql(template))
            .await
            .map_err(db("preparing a statement"))
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object> {
        self.store
            .pool()
            .get()
            .await
            .map_err(|e| Error::from(PgError::pool("connecting for a consumer group", e)))
    }
}

/// A database error of a group operation, with what it was doing.
fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::from(PgError::db(format!("consumer group: {context}"), e))
}

fn not_found(name: &GroupName) -> Error {
    Error::GroupNotFound {
        group: name.to_string(),
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidInput { reason }
}

fn check_ids(ids: &[DeliveryId]) -> Result<()> {
    if ids.len() > MAX_SETTLE_IDS {
        return Err(invalid(format!(
            "at most {MAX_SETTLE_IDS} ids per settle, got {}",
            ids.len()
        )));
    }
    Ok(())
}

/// A position or id as `bigint`, saturating.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `bigint` read back as a position (negative reads as 0).
fn pos(v: i64) -> Position {
    Position(u64::try_from(v).unwrap_or(0))
}

fn settings_json(settings: &GroupSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| Error::Backend(format!("group settings: {e}")))
}

fn settings_from(text: &str) -> Result<GroupSettings> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt {
        location: "groups.settings".into(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl ConsumerGroups for PgGroups {
    async fn put_group(&self, name: &GroupName, settings: GroupSettings) -> Result<GroupStatus> {
        self.put(name, settings).await
    }

    async fn list_groups(&self) -> Result<Vec<GroupStatus>> {
        self.statuses(None).await
    }

    async fn group_status(&self, name: &GroupName) -> Result<Option<GroupStatus>> {
        Ok(self.statuses(Some(name)).await?.into_iter().next())
    }

    async fn delete_group(&self, name: &GroupName) -> Result<bool> {
        self.delete(name).await
    }

    async fn read(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        if max > MAX_READ_MESSAGES {
            return Err(invalid(format!(
                "at most {MAX_READ_MESSAGES} messages per read, got {max}"
            )));
        }
        self.read_waiting(name, consumer, max, wait.min(MAX_READ_WAIT))
            .await
    }

    async fn ack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport> {
        check_ids(ids)?;
        self.settle_ack(name, consumer, ids).await
    }

    async fn nack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport> {
        check_ids(ids)?;
        if reason.len() > MAX_REASON_BYTES {
            return Err(invalid(format!(
                "a reason is at most {MAX_REASON_BYTES} bytes, got {}",
                reason.len()
            )));
        }
        self.settle_nack(name, consumer, ids, action, reason).await
    }

    async fn leave(&self, name: &GroupName, consumer: &ConsumerId) -> Result<()> {
        self.release(name, consumer).await
    }

    async fn parked(&self, name: &GroupName, limit: usize) -> Result<Vec<ParkedMessage>> {
        self.parked_list(name, limit.min(GROUP_PARKED_PAGE)).await
    }

    async fn replay_parked(&self, name: &GroupName, limit: usize) -> Result<u64> {
        self.replay(name, limit.min(GROUP_PARKED_PAGE)).await
    }

    async fn delete_parked(&self, name: &GroupName, positions: &[Position]) -> Result<u64> {
        if positions.len() > MAX_SETTLE_IDS {
            return Err(invalid(format!(
                "at most {MAX_SETTLE_IDS} positions per delete, got {}",
                positions.len()
            )));
        }
        self.unpark(name, positions).await
    }
}
