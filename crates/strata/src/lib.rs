//! # strata
//!
//! The event-sourcing framework of Strata, generic over any
//! [`EventStore`]. It re-exports all of `strata-core`.
//!
//! - [`Aggregate`]: typed commands and events; `handle` decides, `apply` evolves.
//! - [`DomainEvent`]: an event enum whose variant names are stable event
//!   types, with a schema version per type ([`event`]).
//! - [`Repository`]: load (snapshot + tail) → handle → append guarded by the
//!   loaded version, bounded jittered retries on conflict ([`RetryPolicy`]),
//!   correlation and causation ids ([`CommandMeta`]), an optional
//!   in-process LRU of hot aggregates.
//! - [`snapshot`]: "every k events" snapshots that never fail a command and
//!   are ignored when their schema version is stale.
//! - [`time_travel`]: [`Repository::load_as_of`] a version, a position or a time.
//! - [`upcast`]: [`Upcasters`] that bring old event payloads up to date.
//! - [`bank`]: a bank account, the framework's worked example.
//! - [`projection`]: [`Projection`]s and typed ones ([`TypedProjection`],
//!   [`Typed`]), run by a [`ProjectionRunner`] ([`runner`]) that
//!   checkpoints, catches up, goes live and rebuilds.
//! - [`processor`]: the [`EventProcessor`]: handlers per event type plus
//!   projections, in batches, in stream-partitioned parallel, with failing
//!   events parked ([`parking`]) instead of blocking.
//! - [`group`]: consumer groups; a processor's handlers or a projection
//!   run as one member of a group ([`group::GroupMember`]), so the work
//!   scales out over tasks and instances.
//! - [`query`]: the [`QueryModel`]: named projections behind caches, read
//!   with a [`Consistency`] (eventual, or at least a position:
//!   read-your-writes).
//! - [`consistency`]: projection lag and a causal-order checker.
//! - [`account_balance`]: the bank's `AccountBalanceProjection`.
//! - [`testing`]: a given/when/then harness for aggregates.
//!
//! The event representation and snapshot format are decided in
//! `docs/adr/0003-framework-events-and-snapshots.md`; the read side in
//! `docs/adr/0004-projections-and-consistency.md`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod account_balance;
pub mod aggregate;
pub mod bank;
mod cache;
pub mod command;
pub mod consistency;
pub mod decision;
pub mod error;
pub mod event;
mod feed;
pub mod group;
pub mod parking;
pub mod processor;
pub mod projection;
pub mod query;
pub mod repository;
pub mod retry;
pub mod runner;
pub mod snapshot;
pub mod stats;
pub mod testing;
pub mod time_travel;
pub mod upcast;

pub use strata_core::*;

pub use aggregate::Aggregate;
pub use command::{CommandMeta, Committed};
pub use consistency::{lag_of, CausalChecker, CausalReport, Lag};
pub use error::{AggregateError, DecodeError};
pub use event::{DomainEvent, EncodedEvent, SCHEMA_METADATA_KEY};
pub use parking::{MemoryParkedStore, ParkedEvent, ParkedStore};
pub use processor::{
    handler_fn, EventHandler, EventProcessor, ProcessorConfig, ProcessorError, RunningProcessor,
};
pub use projection::{Projection, ProjectionError, Typed, TypedProjection};
pub use query::{Consistency, QueryError, QueryModel, Queryable, ReadModel};
pub use repository::{AggregateResult, Loaded, Repository};
pub use retry::RetryPolicy;
pub use runner::{
    CatchUpReport, Progress, ProjectionRunner, ProjectionStatus, RunReport, RunnerConfig,
    RunningProjection, SharedProjection, WaitError,
};
pub use snapshot::SnapshotPolicy;
pub use stats::RepositoryStats;
pub use time_travel::AsOf;
pub use upcast::Upcasters;

/// Re-exported: command ids are UUIDs.
pub use uuid::Uuid;

/// Re-exported: [`AsOf::Time`] and recorded times are `chrono` times.
pub use chrono;
/// Re-exported: the time type of [`AsOf::Time`] and of recorded events.
pub use chrono::{DateTime, Utc};
