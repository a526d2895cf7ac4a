//! Exactly-once projections into PostgreSQL tables: the read-model rows and
//! the checkpoint are written in one transaction.
//!
//! Each step opens a transaction, locks the projection's checkpoint row (so
//! two runners of one projection never apply the same events), reads the
//! next events after the checkpoint, hands each to the handler together with
//! the transaction, saves the new checkpoint and commits. A crash, a dropped
//! connection or a failing handler rolls back the rows and the checkpoint
//! together, and the next step applies the same events again: every event
//! changes the read model exactly once.

use std::future::Future;

use futures::future::BoxFuture;
use strata_core::{async_trait, Error, Position, ReadFilter, RecordedEvent};
use tokio_postgres::Transaction;

use crate::error::PgError;
use crate::migrate::to_i64;
use crate::read::{event_from_row, param_refs, read_all_query};
use crate::store::PostgresStore;

/// Most events applied in one transaction unless configured otherwise.
pub const DEFAULT_PROJECTION_BATCH_EVENTS: usize = 500;

/// Most events one transaction may be configured to apply.
pub const MAX_PROJECTION_BATCH_EVENTS: usize = 10_000;

/// How long [`PgTransactionalProjection::run_until`] sleeps between polls
/// when no append wakes it, in ms.
pub const PROJECTION_IDLE_POLL_MS: u64 = 1_000;

/// What a handler may fail with.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Why a projection step failed. Nothing of the step was committed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The handler refused an event.
    #[error("projection `{name}` failed on the event at position {position}: {source}")]
    Handler {
        /// The projection.
        name: String,
        /// The event's position.
        position: Position,
        /// The handler's error.
        #[source]
        source: HandlerError,
    },
    /// The database failed (the step can be run again).
    #[error(transparent)]
    Database(#[from] PgError),
    /// The store refused (decoding, closed, ...).
    #[error(transparent)]
    Store(#[from] Error),
}

/// Applies one event to the read model inside the projection's transaction.
#[async_trait]
pub trait PgProjectionHandler: Send {
    /// Writes whatever `event` changes, through `tx` only.
    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError>;
}

/// A [`PgProjectionHandler`] made of a closure (see
/// [`PgTransactionalProjection::from_fn`]).
pub struct FnHandler<F>(F);

#[async_trait]
impl<F> PgProjectionHandler for FnHandler<F>
where
    F: for<'a> FnMut(
            &'a Transaction<'a>,
            &'a RecordedEvent,
        ) -> BoxFuture<'a, Result<(), HandlerError>>
        + Send,
{
    async fn handle(
        &mut self,
        tx: &Transaction<'_>,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        (self.0)(tx, event).await
    }
}

impl<F> PgTransactionalProjection<FnHandler<F>>
where
    F: for<'a> FnMut(
            &'a Transaction<'a>,
            &'a RecordedEvent,
        ) -> BoxFuture<'a, Result<(), HandlerError>>
        + Send,
{
    /// A projection named `name` whose handler is a closure
    /// `FnMut(&Transaction, &RecordedEvent) -> BoxFuture<Result<(), HandlerError>>`.
    pub fn from_fn(store: PostgresStore, name: impl Into<String>, handler: F) -> Self {
        PgTransactionalProjection::new(store, name, FnHandler(handler))
    }
}

/// A projection whose read model lives in PostgreSQL tables, written in the
/// same transaction as its checkpoint (exactly once).
///
/// ```no_run
/// # async fn run(store: strata_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
/// use futures::FutureExt;
/// use strata_postgres::PgTransactionalProjection;
/// let mut counts = PgTransactionalProjection::from_fn(store, "event-counts", |tx, event| {
///     async move {
///         tx.execute(
///             "INSERT INTO counts (event_type, n) VALUES ($1, 1)
///              ON CONFLICT (event_type) DO UPDATE SET n = counts.n + 1",
///             &[&event.event_type],
///         )
///         .await?;
///         Ok(())
///     }
///     .boxed()
/// });
/// let checkpoint = counts.catch_up().await?;
/// # Ok(()) }
/// ```
pub struct PgTransactionalProjection<H> {
    store: PostgresStore,
    name: String,
    filter: ReadFilter,
    handler: H,
    batch_events: usize,
}

impl<H: PgProjectionHandler> PgTransactionalProjection<H> {
    /// A projection named `name` (its checkpoint's name) over every event.
    pub fn new(store: PostgresStore, name: impl Into<String>, handler: H) -> Self {
        PgTransactionalProjection {
            store,
            name: name.into(),
            filter: ReadFilter::all(),
            handler,
            batch_events: DEFAULT_PROJECTION_BATCH_EVENTS,
        }
    }

    /// Only events that pass `filter` reach the handler.
    pub fn filter(mut self, filter: ReadFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Most events per transaction (1 to [`MAX_PROJECTION_BATCH_EVENTS`]).
    pub fn batch_events(mut self, n: usize) -> Self {
        self.batch_events = n.clamp(1, MAX_PROJECTION_BATCH_EVENTS);
        self
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handler (to inspect its state in tests).
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Applies every event committed so far; returns the checkpoint.
    pub async fn catch_up(&mut self) -> Result<Position, ProjectionError> {
        loop {
            let (checkpoint, applied) = self.step().await?;
            if applied < self.batch_events {
                return Ok(checkpoint);
            }
        }
    }

    /// Catches up, then follows new events (woken by the store's
    /// notifications, polling as a fallback) until `stop` completes; returns
    /// the checkpoint. A failing step is returned as the error; run again to
    /// resume from the last committed checkpoint.
    pub async fn run_until(
        &mut self,
        stop: impl Future<Output = ()>,
    ) -> Result<Position, ProjectionError> {
        let mut head = self.store.head_receiver();
        tokio::pin!(stop);
        loop {
            let checkpoint = self.catch_up().await?;
            if *head.borrow_and_update() > checkpoint {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return Ok(checkpoint),
                _ = head.changed() => {}
                _ = tokio::time::sleep(std::time::Duration::from_millis(PROJECTION_IDLE_POLL_MS)) => {}
            }
        }
    }

    /// One transaction: lock the checkpoint, apply up to `batch_events`
    /// events after it, save the checkpoint, commit. Returns the checkpoint
    /// and how many events were applied.
    pub async fn step(&mut self) -> Result<(Position, usize), ProjectionError> {
        let database = self.store.database().clone();
        let sql = &database.sql;
        let mut client = database
            .pool
            .get()
            .await
            .map_err(|e| PgError::pool("running a projection", e))?;
        let db = |e| PgError::db("running a projection", e);
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(&sql.projection_claim, &[&self.name])
            .await
            .map_err(db)?;
        let row = tx
            .query_one(&sql.projection_lock, &[&self.name])
            .await
            .map_err(db)?;
        let checkpoint: i64 = row.get(0);
        let checkpoint = Position(u64::try_from(checkpoint).unwrap_or(0));
        let (text, params) =
            read_all_query(sql, checkpoint.next(), self.batch_events, &self.filter);
        let rows = tx.query(&text, &param_refs(&params)).await.map_err(db)?;
        let mut last = checkpoint;
        for row in &rows {
            let event = event_from_row(row, 0)?;
            let position = event.position;
            self.handler
                .handle(&tx, &event)
                .await
                .map_err(|source| ProjectionError::Handler {
                    name: self.name.clone(),
                    position,
                    source,
                })?;
            last = position;
        }
        if last > checkpoint {
            tx.execute(&sql.checkpoint_save, &[&self.name, &to_i64(last.0)])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok((last, rows.len()))
    }
}
