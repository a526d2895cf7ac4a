//! # strata-postgres
//!
//! Strata's PostgreSQL event store: several processes or machines share one
//! event log through a PostgreSQL schema.
//!
//! - [`PostgresStore`] implements the whole [`EventStore`](strata_core::EventStore)
//!   contract and passes the conformance suite and the model-based property test.
//! - **A global order no subscriber can skip.** Positions are taken from one
//!   counter row whose lock is held until the append commits, so commits
//!   happen in position order and a reader never sees a position before a
//!   lower one is visible (`docs/adr/0005-postgres-global-order.md`).
//! - **Group commit.** Concurrent appends through one store are combined into
//!   one transaction of two pipelined round trips, each keeping its own guard:
//!   one conflict does not fail the others.
//! - **Live subscriptions** are woken by `LISTEN/NOTIFY`, fall back to
//!   polling, and survive dropped connections without gap or duplicate.
//! - **Safe retries.** Every event has an id before it is sent, so an append
//!   whose outcome is unknown (the connection dropped) is run again by the
//!   store, or by the caller, and returns the original result.
//! - **Stream metadata and retention.** The settings of each metadata stream
//!   `$$NAME` are kept in a table written in the same statement as its
//!   events; every read joins them in its own snapshot, so what another
//!   process set governs the next read (`docs/postgres.md`).
//! - [`migrate`]: versioned, idempotent migrations in `.sql` files, run by the
//!   crate; every object lives in a configurable schema (default `strata`).
//!   The events table may be partitioned by position range
//!   ([`EventsLayout::Partitioned`]), so old ranges can be detached.
//! - **Erasure and scavenging.** `erase_stream` deletes a stream's rows at
//!   once; the store's [`StoreAdmin`](strata_core::StoreAdmin) face deletes
//!   the rows of deleted streams and those retention cuts in bounded
//!   batches, never blocking appends (`docs/postgres.md`).
//! - [`PgGroups`]: consumer groups shared by every process on the database,
//!   leased with `FOR UPDATE SKIP LOCKED` (`docs/postgres.md`).
//! - [`PgSnapshotStore`], [`PgCheckpointStore`], and
//!   [`PgTransactionalProjection`] for exactly-once projections into
//!   PostgreSQL tables.
//!
//! See `docs/postgres.md` for the schema, operations and figures.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod checkpoint;
mod config;
mod database;
mod erase;
mod error;
mod group;
mod head;
mod listener;
mod metadata;
mod migrate;
mod partition;
mod projection;
mod read;
mod scavenge;
mod snapshot;
mod sql;
mod store;
mod tls;
mod writer;

pub use checkpoint::PgCheckpointStore;
pub use config::{
    validate_schema_name, EventsLayout, PgConfig, DEFAULT_CONNECT_TIMEOUT_SECS,
    DEFAULT_HEAD_POLL_INTERVAL_MS, DEFAULT_PARTITION_POSITIONS, DEFAULT_POOL_SIZE, DEFAULT_SCHEMA,
    MAX_SCHEMA_NAME_BYTES, POOL_WAIT_TIMEOUT_SECS,
};
pub use database::{MAX_READ_ATTEMPTS, RETRY_BACKOFF_BASE_MS, RETRY_BACKOFF_MAX_MS};
pub use erase::MAX_ERASE_ATTEMPTS;
pub use error::PgError;
pub use group::{
    PgGroups, GROUP_CLAIM_EVENTS, GROUP_CLAIM_LOW_WATER, GROUP_PINNED_CANDIDATES,
    GROUP_PINNED_WINDOW, GROUP_WAIT_POLL_MS,
};
pub use listener::{DISCONNECTED_POLL_MS, LISTEN_RECONNECT_MAX_MS, LISTEN_RECONNECT_MIN_MS};
pub use migrate::{
    migrate, migrate_client, schema_version, MigrationReport, CURRENT_SCHEMA_VERSION,
    PARTITIONS_AHEAD,
};
pub use partition::PartitionInfo;
pub use projection::{
    FnHandler, HandlerError, PgProjectionHandler, PgTransactionalProjection, ProjectionError,
    DEFAULT_PROJECTION_BATCH_EVENTS, MAX_PROJECTION_BATCH_EVENTS, PROJECTION_IDLE_POLL_MS,
};
pub use scavenge::{DEFAULT_SCAVENGE_BATCH_ROWS, MAX_SCAVENGE_BATCH_ROWS, SCAVENGE_PLAN_STREAMS};
pub use snapshot::{PgSnapshotStore, MAX_SNAPSHOTS_PER_STREAM};
pub use store::{PostgresStore, StoreStats, CLOSE_TIMEOUT_SECS};
pub use tls::{PgTls, MAX_ROOT_CERT_FILE_BYTES};
pub use writer::{
    ANALYZE_FIRST_EVENTS, MAX_BATCH_APPENDS, MAX_BATCH_ATTEMPTS, MAX_BATCH_BYTES, MAX_BATCH_EVENTS,
    MAX_CACHED_STATEMENTS, MAX_LINGER_YIELDS, MAX_QUEUED_APPENDS,
};

/// The driver and pool this crate uses, re-exported so callers of
/// [`PgTransactionalProjection`] and [`PostgresStore::pool`] use the same versions.
pub use deadpool_postgres;
pub use tokio_postgres;
