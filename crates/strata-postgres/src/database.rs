//! The database a store works in, database by the store, its writer, its
//! listener and its snapshot and checkpoint stores: the pool, the rendered
//! SQL, reads retried on a new connection, and the head query.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use deadpool_postgres::Pool;
use strata_core::{Error, Position, Result};

use crate::config::{EventsLayout, Ordering, PgConfig};
use crate::error::PgError;
use crate::read::position_from_row;
use crate::scavenge::ScavengeProgress;
use crate::sql::Sql;

/// Attempts of a read when its connection drops (each on a new connection).
pub const MAX_READ_ATTEMPTS: u32 = 4;

/// First pause between attempts, in ms; doubles per attempt.
pub const RETRY_BACKOFF_BASE_MS: u64 = 10;

/// Longest pause between attempts, in ms.
pub const RETRY_BACKOFF_MAX_MS: u64 = 1_000;

/// The database a store works in: its connection pool, the SQL rendered for
/// its schema, its configuration and layout, and the writer's counters.
#[derive(Debug)]
pub(crate) struct Database {
    pub pool: Pool,
    pub sql: Sql,
    pub config: PgConfig,
    /// The layout recorded in the schema (which wins over the configured one).
    pub layout: EventsLayout,
    pub stats: Counters,
    /// The scavenge's progress and totals (`scavenge.rs`).
    pub scavenge: ScavengeProgress,
}

/// The writer's counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub batches: AtomicU64,
    /// Batches that committed at least one event (each a WAL flush with
    /// `synchronous_commit = on`).
    pub writing_commits: AtomicU64,
    pub appends: AtomicU64,
    pub events: AtomicU64,
    pub retried_attempts: AtomicU64,
}

impl Database {
    /// Runs a read, again on a new connection when the connection drops.
    pub(crate) async fn read<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T>
    where
        F: FnMut(deadpool_postgres::Object) -> Fut,
        Fut: Future<Output = std::result::Result<T, ReadError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match self.pool.get().await {
                Ok(client) => f(client).await,
                Err(e) => Err(ReadError::Db(PgError::pool(what, e))),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(ReadError::Store(e)) => return Err(e),
                Err(ReadError::Db(e)) if e.is_connection_error() && attempt < MAX_READ_ATTEMPTS => {
                    tracing::warn!(attempt, error = %e, "read failed on a dropped connection; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(ReadError::Db(e)) => return Err(e.into()),
            }
        }
    }
}

/// A read's failure: the database's (maybe retried) or the contract's.
pub(crate) enum ReadError {
    /// The database failed.
    Db(PgError),
    /// The answer is an error of the contract (not found, deleted, corrupt).
    Store(Error),
}

impl From<Error> for ReadError {
    fn from(e: Error) -> Self {
        ReadError::Store(e)
    }
}

/// A database error while `context`, as a [`ReadError`].
pub(crate) fn db_error(context: &'static str) -> impl Fn(tokio_postgres::Error) -> ReadError {
    move |e| ReadError::Db(PgError::db(context, e))
}

/// Backoff before attempt `attempt + 1`.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ms = RETRY_BACKOFF_BASE_MS.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms.min(RETRY_BACKOFF_MAX_MS))
}

/// Reads the committed head (used at start-up and by the listener).
pub(crate) async fn read_head(database: &Database) -> std::result::Result<Position, PgError> {
    let client = database
        .pool
        .get()
        .await
        .map_err(|e| PgError::pool("reading the head position", e))?;
    let text = match database.config.ordering {
        Ordering::Serialized => &database.sql.head_position,
        Ordering::Naive => &database.sql.head_position_naive,
    };
    let stmt = client
        .prepare_cached(text)
        .await
        .map_err(|e| PgError::db("reading the head position", e))?;
    let row = client
        .query_one(&stmt, &[])
        .await
        .map_err(|e| PgError::db("reading the head position", e))?;
    position_from_row(&row).map_err(|e| PgError::Schema {
        schema: database.config.schema.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(1) < backoff(2));
        assert_eq!(backoff(30), Duration::from_millis(RETRY_BACKOFF_MAX_MS));
    }
}
