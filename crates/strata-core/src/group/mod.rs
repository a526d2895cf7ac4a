//! Consumer groups: named, durable subscriptions shared by many consumers.
//!
//! Each event of a group's source is leased to one consumer, which acks or
//! nacks it. An event not settled within the group's `ack_timeout_ms`, or
//! held by a consumer that leaves, goes back to the group; an event that
//! keeps failing is parked. The group's checkpoint is the position below
//! which every event was acked, skipped or parked; delivery is at least
//! once. See `docs/adr/0020-consumer-groups.md`.
//!
//! [`ConsumerGroups`] is the contract; the server, the CLI and the framework
//! hold it as a trait object and never name an implementation.

pub mod local;
mod settings;
pub mod state;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::event::RecordedEvent;
use crate::version::Position;

pub use local::LocalGroups;
pub use settings::{
    ConsumerId, GroupName, GroupSettings, GroupSource, GroupStart, Strategy,
    DEFAULT_ACK_TIMEOUT_MS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_RETRIES, DEFAULT_RETRY_BACKOFF_MS,
    MAX_ACK_TIMEOUT_MS, MAX_IN_FLIGHT_LIMIT, MAX_LABELS, MAX_LABELS_BYTES, MAX_LABEL_NAME_BYTES,
    MAX_NAME_BYTES, MAX_RETRIES_LIMIT, MAX_RETRY_BACKOFF_MS,
};

/// The most messages one `read` may ask for.
pub const MAX_READ_MESSAGES: usize = 10_000;
/// The longest one `read` may wait for a first message.
pub const MAX_READ_WAIT: Duration = Duration::from_secs(60);
/// The most ids one `ack` or `nack` may settle.
pub const MAX_SETTLE_IDS: usize = 10_000;
/// The longest reason a nack may give, in bytes.
pub const MAX_REASON_BYTES: usize = 4_096;

/// Identifies one delivery of one event within a group: a nack or a lease
/// timeout ends it, and the event's next delivery has a new id.
pub type DeliveryId = u64;

/// One leased event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// What settles this delivery.
    pub delivery_id: DeliveryId,
    /// 1 on the first delivery, then one more per redelivery.
    pub delivery_count: u32,
    /// The event.
    pub event: RecordedEvent,
}

/// What a nack does with the messages it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NackAction {
    /// Offer it again after the group's back-off; after `max_retries`
    /// retries it is parked instead.
    Retry,
    /// Move it to the group's parked list at once.
    Park,
    /// Settle it without handling: the group moves past it.
    Skip,
}

/// What an `ack` or `nack` settled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleReport {
    /// Deliveries settled as asked.
    pub settled: u64,
    /// Ids that named no current lease of this consumer (already settled,
    /// timed out and handed to another, or unknown); nothing was done.
    pub unknown: u64,
    /// Of the settled retries, those parked because `max_retries` was used.
    pub parked: u64,
}

/// A parked event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParkedMessage {
    /// The event.
    pub event: RecordedEvent,
    /// How many times it was delivered.
    pub delivery_count: u32,
    /// Why it was parked.
    pub reason: String,
    /// When it was parked.
    pub parked_at: DateTime<Utc>,
}

/// A group's state, for status pages and `/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// The group.
    pub name: GroupName,
    /// Its settings.
    pub settings: GroupSettings,
    /// Every event of the source at or below this position was acked,
    /// skipped or parked (`0` before the first).
    pub checkpoint: Position,
    /// Events of the source after the checkpoint not yet settled (leased,
    /// waiting for a retry, or not yet delivered), as far as the group has
    /// counted: at least the events it holds, plus those it has not read.
    pub lag_events: u64,
    /// Seconds between the oldest unsettled event's recording and now (0
    /// when nothing is unsettled).
    pub lag_seconds: f64,
    /// Messages leased now.
    pub in_flight: u64,
    /// Messages in the parked list.
    pub parked: u64,
    /// Consumers connected (live).
    pub consumers: u64,
    /// Acks since the group was loaded.
    pub acked_total: u64,
    /// Events acked per second over the last few seconds.
    pub acked_per_second: f64,
}

/// Consumer groups over a store.
#[async_trait]
pub trait ConsumerGroups: Send + Sync {
    /// Creates a group, or updates an existing one's settings (an update
    /// keeps its checkpoint; a different source is refused).
    async fn put_group(&self, name: &GroupName, settings: GroupSettings) -> Result<GroupStatus>;

    /// Every group, by name.
    async fn list_groups(&self) -> Result<Vec<GroupStatus>>;

    /// One group's status; `None` when there is no such group.
    async fn group_status(&self, name: &GroupName) -> Result<Option<GroupStatus>>;

    /// Deletes a group, its checkpoint and its parked list. Whether it existed.
    async fn delete_group(&self, name: &GroupName) -> Result<bool>;

    /// Leases up to `max` messages to `consumer` (at most its free in-flight
    /// room), waiting up to `wait` for the first one. Empty when nothing
    /// came in time.
    async fn read(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>>;

    /// Acks deliveries: durable before this returns.
    async fn ack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
    ) -> Result<SettleReport>;

    /// Nacks deliveries with one action and reason.
    async fn nack(
        &self,
        name: &GroupName,
        consumer: &ConsumerId,
        ids: &[DeliveryId],
        action: NackAction,
        reason: &str,
    ) -> Result<SettleReport>;

    /// A consumer leaves: its leases go back to the group at once.
    async fn leave(&self, name: &GroupName, consumer: &ConsumerId) -> Result<()>;

    /// Up to `limit` parked messages, oldest first.
    async fn parked(&self, name: &GroupName, limit: usize) -> Result<Vec<ParkedMessage>>;

    /// Offers up to `limit` parked messages to the group again (with a fresh
    /// retry budget), oldest first; how many.
    async fn replay_parked(&self, name: &GroupName, limit: usize) -> Result<u64>;

    /// Removes parked messages at these positions from the list; how many
    /// were there.
    async fn delete_parked(&self, name: &GroupName, positions: &[Position]) -> Result<u64>;
}
