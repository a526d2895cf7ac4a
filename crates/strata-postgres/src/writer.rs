//! The group-commit writer: one task per store drains the queue of appends
//! and commits each batch in one transaction of two pipelined round trips.
//!
//! 1. `BEGIN`; create-if-missing and lock the batch's stream rows (sorted, so
//!    concurrent batches cannot deadlock); look up the batch's event ids.
//!    When the batch holds conditional appends, the same round trip takes
//!    the global position lock and runs every condition's check under it
//!    (`condition.rs`).
//! 2. Decide every append with the database rules of `strata_core::append_rules`
//!    (tombstone, idempotent retry, guard, then the condition against the
//!    committed events and those accepted earlier in the batch), in queue
//!    order, against the locked heads as earlier appends of the batch leave
//!    them. A failing append gets its own error; the others go on.
//! 3. One statement takes the global position lock, inserts all accepted
//!    events (`UNNEST`), advances the heads, writes the settings of the
//!    metadata streams written (`stream_metadata`) and queues the
//!    notification; `COMMIT` follows in the same round trip.
//!
//! Every event has its id before the first attempt (generated here when the
//! caller gave none), so a batch whose outcome is unknown because the
//! connection dropped is simply run again: recorded events come back as
//! idempotent retries with their original positions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;

use strata_core::append_rules::{check_guard, check_retry, RecordedRef, StreamHead};
use strata_core::dcb::{AppendCondition, Tag};
use strata_core::handoff::Reply;
use strata_core::metadata::metadata_target;
use strata_core::{AppendResult, Error, EventId, Position, Result, StreamAppend, StreamMetadata};
use tokio::sync::{mpsc, watch};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::config::{EventsLayout, Ordering};
use crate::database::backoff;
use crate::database::Database;
use crate::error::{is_connection_error, is_missing_partition, is_transient, PgError};
use crate::head::HeadFeed;
use crate::metadata::MetadataColumns;
use crate::migrate::{to_i64, PARTITIONS_AHEAD};
use crate::read::{corrupt, head_from_row, param_refs};

mod condition;
mod decide;

use condition::{BatchEvents, Check, Checked};
use decide::{copy_error, plan, Plan};

/// Appends waiting for the writer; callers wait for room beyond this.
pub const MAX_QUEUED_APPENDS: usize = 4_096;

/// Most appends combined into one transaction.
pub const MAX_BATCH_APPENDS: usize = 1_024;

/// Most events in one transaction (a single larger append gets its own).
pub const MAX_BATCH_EVENTS: usize = 20_000;

/// Most payload bytes in one transaction (a single larger append gets its own).
pub const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// Most times the writer yields, before taking a batch under load, to let
/// the appenders it just answered queue their next appends.
pub const MAX_LINGER_YIELDS: usize = 16;

/// Events a store writes before it first refreshes the planner's statistics
/// of the events table (`ANALYZE`); it does so again each time the count
/// doubles. A table filled faster than autovacuum looks at it (once a
/// minute) otherwise has no statistics, and PostgreSQL then plans a filtered
/// `$all` page as a scan of every matching row plus a sort — 340 ms a page
/// instead of 2 ms at 240,000 events.
pub const ANALYZE_FIRST_EVENTS: u64 = 10_000;

/// Most prepared statements one pooled connection keeps; past this its
/// cache is emptied (and statements are prepared again as they are used).
pub const MAX_CACHED_STATEMENTS: usize = 256;

/// Attempts per batch when the connection drops or a transaction must be
/// re-run (deadlock, concurrent insert, missing partition).
pub const MAX_BATCH_ATTEMPTS: u32 = 8;

/// One caller's append (or multi-stream append), waiting for the writer.
pub(crate) struct WriteRequest {
    /// The parts; every event has an id.
    pub parts: Vec<StreamAppend>,
    /// Each part's events' metadata as JSON (`None` when empty).
    pub metadata: Vec<Vec<Option<String>>>,
    /// Each part's stream metadata settings: those of its last event when
    /// it appends to a metadata stream `$$NAME` (checked), else `None`.
    pub settings: Vec<Option<StreamMetadata>>,
    /// Ids the store generated (not the caller's): they cannot be recorded
    /// unless an earlier attempt of this very batch committed them.
    pub generated: HashSet<EventId>,
    /// The condition of a conditional append (`append_if`): checked in the
    /// transaction that writes it, under the global position lock, against
    /// the committed events and those accepted earlier in its batch.
    pub condition: Option<AppendCondition>,
    /// The events' size in bytes, as the store's limits check measured it
    /// (they are not measured again).
    pub bytes: usize,
    /// Where the outcome goes.
    pub reply: Reply<Vec<AppendResult>>,
}

impl WriteRequest {
    fn events(&self) -> usize {
        self.parts.iter().map(|p| p.events.len()).sum()
    }

    fn ids(&self) -> impl Iterator<Item = EventId> + '_ {
        self.parts
            .iter()
            .flat_map(|p| p.events.iter())
            .filter_map(|e| e.id)
    }
}

/// The writer task's state.
pub(crate) struct Writer {
    database: Arc<Database>,
    head: Arc<HeadFeed>,
    /// Positions up to this are covered by partitions (partitioned layout).
    partitions_through: u64,
    /// The last position this writer knows to be taken.
    known_last: u64,
    /// Events written since the store opened.
    written: u64,
    /// At this many written events, refresh the table's statistics.
    analyze_at: u64,
    /// Whether an `ANALYZE` started by this writer is still running.
    analyzing: Arc<AtomicBool>,
}

/// How a batch attempt failed.
enum Failure {
    /// Connection lost (outcome unknown) or a transaction to run again.
    Retry(PgError),
    /// Anything else: every append of the batch gets this error.
    Fatal(Error),
}

impl Failure {
    fn from_db(context: &str, e: tokio_postgres::Error) -> Failure {
        if is_connection_error(&e) || is_transient(&e) {
            Failure::Retry(PgError::db(context, e))
        } else {
            Failure::Fatal(PgError::db(context, e).into())
        }
    }
}

/// What a batch attempt committed: each request's outcome and the new head.
struct Committed {
    outcomes: Vec<Result<Vec<AppendResult>>>,
    head: Option<Position>,
    events: u64,
}

impl Writer {
    pub(crate) fn new(database: Arc<Database>, head: Arc<HeadFeed>, known_last: Position) -> Self {
        Writer {
            database,
            head,
            partitions_through: 0,
            known_last: known_last.0,
            written: 0,
            analyze_at: ANALYZE_FIRST_EVENTS,
            analyzing: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Drains the queue until it closes (store dropped) or `shutdown` fires;
    /// appends already queued are still written.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<WriteRequest>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut held: Option<WriteRequest> = None;
        let mut closing = false;
        let mut last_batch = 0usize;
        let serialized = self.database.config.ordering == Ordering::Serialized;
        loop {
            let first = match held.take() {
                Some(r) => r,
                None if closing => match rx.recv().await {
                    Some(r) => r,
                    None => return,
                },
                None => tokio::select! {
                    r = rx.recv() => match r {
                        Some(r) => r,
                        None => return,
                    },
                    _ = shutdown.wait_for(|closed| *closed) => {
                        // Also taken when the store is dropped (sender gone).
                        closing = true;
                        rx.close();
                        continue;
                    }
                },
            };
            if last_batch > 1 {
                // Under load, the appenders answered by the last batch come
                // straight back: give them a moment to queue, so one batch
                // takes them all instead of alternating half-full batches.
                let mut queued = rx.len();
                for _ in 0..MAX_LINGER_YIELDS {
                    tokio::task::yield_now().await;
                    let now = rx.len();
                    if now == queued || now + 1 >= last_batch {
                        break;
                    }
                    queued = now;
                }
            }
            let mut events = first.events();
            let mut bytes = first.bytes;
            let mut ids: HashSet<EventId> = first.ids().collect();
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_APPENDS {
                let Ok(next) = rx.try_recv() else { break };
                // An id already in the batch (a concurrent retry of the same
                // append) waits for the next batch, which will see it recorded.
                // Conditional appends share batches (their conditions are
                // also checked against the batch's earlier events), except
                // under the test-only naive ordering, whose positions are
                // not known before the insert: there one opens a batch.
                let fits = (next.condition.is_none() || serialized)
                    && events + next.events() <= MAX_BATCH_EVENTS
                    && bytes + next.bytes <= MAX_BATCH_BYTES
                    && next.ids().all(|id| !ids.contains(&id));
                if !fits {
                    held = Some(next);
                    break;
                }
                events += next.events();
                bytes += next.bytes;
                ids.extend(next.ids());
                batch.push(next);
            }
            last_batch = batch.len();
            self.commit(batch).await;
        }
    }

    async fn commit(&mut self, batch: Vec<WriteRequest>) {
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            // A first attempt need not look up the ids the store generated;
            // after a failure whose outcome may be unknown, it must.
            match self.attempt(&batch, attempt > 1).await {
                Ok(done) => break Ok(done),
                Err(Failure::Retry(e)) if attempt < MAX_BATCH_ATTEMPTS => {
                    self.database
                        .stats
                        .retried_attempts
                        .fetch_add(1, AtomicOrdering::Relaxed);
                    tracing::warn!(
                        attempt,
                        appends = batch.len(),
                        error = %e,
                        "append batch failed; running it again (event ids make this safe)"
                    );
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Failure::Retry(e)) => {
                    tracing::error!(attempts = attempt, error = %e, "append batch failed for good");
                    break Err(Error::Backend(format!(
                        "{} (gave up after {attempt} attempts; the outcome may be unknown: \
                         retrying the append with the same event ids is safe)",
                        strata_core::error::error_chain(&e)
                    )));
                }
                Err(Failure::Fatal(e)) => {
                    tracing::error!(error = %e, "append batch failed");
                    break Err(e);
                }
            }
        };
        match outcome {
            Ok(done) => {
                let stats = &self.database.stats;
                stats.batches.fetch_add(1, AtomicOrdering::Relaxed);
                if done.events > 0 {
                    stats.writing_commits.fetch_add(1, AtomicOrdering::Relaxed);
                }
                stats
                    .appends
                    .fetch_add(batch.len() as u64, AtomicOrdering::Relaxed);
                stats.events.fetch_add(done.events, AtomicOrdering::Relaxed);
                self.written += done.events;
                if self.written >= self.analyze_at {
                    self.analyze_at = self.written.saturating_mul(2);
                    self.refresh_statistics();
                }
                if let Some(head) = done.head {
                    self.known_last = self.known_last.max(head.0);
                    self.head.publish(head);
                }
                for (request, result) in batch.into_iter().zip(done.outcomes) {
                    let _ = request.reply.send(result);
                }
            }
            Err(e) => {
                for request in batch {
                    let _ = request.reply.send(Err(copy_error(&e)));
                }
            }
        }
    }

    /// Starts `ANALYZE` of the events table in the background (one at a
    /// time; skipped when turned off). A failure is only logged: statistics
    /// make reads faster, never correct.
    fn refresh_statistics(&self) {
        if !self.database.config.auto_analyze || self.analyzing.swap(true, AtomicOrdering::AcqRel) {
            return;
        }
        let database = self.database.clone();
        let analyzing = self.analyzing.clone();
        tokio::spawn(async move {
            let statement = format!("ANALYZE \"{}\".events", database.config.schema);
            let outcome = match database.pool.get().await {
                Ok(client) => client
                    .batch_execute(&statement)
                    .await
                    .map_err(|e| PgError::db("refreshing the events table's statistics", e)),
                Err(e) => Err(PgError::pool("refreshing the events table's statistics", e)),
            };
            match outcome {
                Ok(()) => {
                    tracing::debug!(schema = %database.config.schema, "analyzed the events table")
                }
                Err(e) => tracing::debug!(error = %e, "could not analyze the events table"),
            }
            analyzing.store(false, AtomicOrdering::Release);
        });
    }

    async fn attempt(
        &mut self,
        batch: &[WriteRequest],
        lookup_generated: bool,
    ) -> Result<Committed, Failure> {
        let client = self
            .database
            .pool
            .get()
            .await
            .map_err(|e| Failure::Retry(PgError::pool("appending", e)))?;
        self.ensure_partitions(&client, batch).await?;
        let checks = condition::checks(&self.database.sql, batch);
        let statements = self.prepare(&client, &checks).await?;
        let (heads, recorded, checked) =
            lock_and_look_up(&client, &statements, batch, lookup_generated, &checks).await?;

        // Decide every append against the locked heads.
        let plan = plan(batch, heads, &recorded, &checked);
        if plan.total == 0 {
            rollback(&client).await;
            return Ok(Committed {
                outcomes: plan.resolve(|_| Position::START),
                head: None,
                events: 0,
            });
        }
        self.insert_and_commit(&client, &statements, &plan).await
    }

    /// On the partitioned layout, creates partitions ahead of the positions
    /// this batch may take.
    async fn ensure_partitions(
        &mut self,
        client: &deadpool_postgres::Object,
        batch: &[WriteRequest],
    ) -> Result<(), Failure> {
        let EventsLayout::Partitioned {
            positions_per_partition: size,
        } = self.database.layout
        else {
            return Ok(());
        };
        let events: usize = batch.iter().map(WriteRequest::events).sum();
        let estimate = self
            .known_last
            .max(self.head.current().0)
            .saturating_add(events as u64);
        if estimate.saturating_add(size) > self.partitions_through {
            let upto = estimate.saturating_add(size.saturating_mul(PARTITIONS_AHEAD));
            let row = client
                .query_one(&self.database.sql.partition_ensure, &[&to_i64(upto)])
                .await
                .map_err(|e| Failure::from_db("creating partitions", e))?;
            let through: i64 = row.get(0);
            self.partitions_through = u64::try_from(through).unwrap_or(0);
        }
        Ok(())
    }

    /// The append transaction's statements, prepared once per connection,
    /// and the checks of the batch's conditions (one statement per shape of
    /// query, in the connection's bounded cache).
    async fn prepare(
        &self,
        client: &deadpool_postgres::Object,
        checks: &[Check],
    ) -> Result<Statements, Failure> {
        let sql = &self.database.sql;
        let prepare = |text: &'static str| client.prepare_cached(text);
        let conditions = async {
            if checks.is_empty() {
                return Ok((None, Vec::new()));
            }
            let texts = checks.iter().map(|c| prepare_bounded(client, &c.text));
            let (lock, checks) = futures::try_join!(
                client.prepare_cached(&sql.lock_position),
                futures::future::try_join_all(texts),
            )?;
            Ok((Some(lock), checks))
        };
        let (begin, commit, ensure, lock, lookup, append, (lock_position, checks)) =
            futures::try_join!(
                prepare("BEGIN"),
                prepare("COMMIT"),
                client.prepare_cached(&sql.ensure_streams),
                client.prepare_cached(&sql.lock_streams),
                client.prepare_cached(&sql.lookup_ids),
                client.prepare_cached(match self.database.config.ordering {
                    Ordering::Serialized => &sql.append,
                    Ordering::Naive => &sql.append_naive,
                }),
                conditions,
            )
            .map_err(|e| Failure::from_db("preparing the append statements", e))?;
        Ok(Statements {
            begin,
            commit,
            ensure,
            lock,
            lookup,
            append,
            lock_position,
            checks,
        })
    }

    /// Phase 2: position lock, insert, heads, notify, commit (one round trip).
    async fn insert_and_commit(
        &mut self,
        client: &deadpool_postgres::Object,
        statements: &Statements,
        plan: &Plan<'_>,
    ) -> Result<Committed, Failure> {
        let cols = &plan.columns;
        let total = to_i64(plan.total);
        let (names, versions, offsets) = plan.stream_updates();
        let settings = plan.metadata_rows();
        let params: [&(dyn ToSql + Sync); 18] = [
            &total,
            &cols.ids,
            &cols.streams,
            &cols.versions,
            &cols.types,
            &cols.content_types,
            &cols.data,
            &cols.metadata,
            &names,
            &versions,
            &offsets,
            &self.database.sql.channel,
            &settings.streams,
            &settings.versions,
            &settings.max_count,
            &settings.max_age,
            &settings.truncate_before,
            &cols.tags,
        ];
        let (append, commit) = (&statements.append, &statements.commit);
        match self.database.config.ordering {
            Ordering::Serialized => {
                let phase2 = futures::try_join!(
                    client.query_one(append, &params),
                    client.execute(commit, &[]),
                );
                let (row, _) = phase2.map_err(|e| self.phase2_failure(e))?;
                committed_serialized(&row, plan)
            }
            Ordering::Naive => {
                let phase2 =
                    futures::try_join!(client.query(append, &params), client.execute(commit, &[]),);
                let (rows, _) = phase2.map_err(|e| self.phase2_failure(e))?;
                Ok(committed_naive(&rows, plan))
            }
        }
    }

    fn phase2_failure(&mut self, e: tokio_postgres::Error) -> Failure {
        if is_missing_partition(&e) {
            // Another process moved the head past our partitions: check again.
            self.partitions_through = 0;
        }
        Failure::from_db("appending events", e)
    }
}

type Heads = HashMap<String, StreamHead>;
type Recorded = HashMap<EventId, (String, u64, Position)>;

/// The prepared statements of one append transaction.
struct Statements {
    begin: tokio_postgres::Statement,
    commit: tokio_postgres::Statement,
    ensure: tokio_postgres::Statement,
    lock: tokio_postgres::Statement,
    lookup: tokio_postgres::Statement,
    append: tokio_postgres::Statement,
    /// `writer/lock_position.sql`, when the batch has conditions.
    lock_position: Option<tokio_postgres::Statement>,
    /// The checks' statements, in the order of the batch's checks.
    checks: Vec<tokio_postgres::Statement>,
}

/// Phase 1: begins the transaction, locks the batch's stream heads, looks
/// up its event ids and, when it holds conditional appends, takes the
/// position lock and runs their checks under it (one round trip). Rolls
/// back on failure.
async fn lock_and_look_up(
    client: &deadpool_postgres::Object,
    statements: &Statements,
    batch: &[WriteRequest],
    lookup_generated: bool,
    checks: &[Check],
) -> Result<(Heads, Recorded, Checked), Failure> {
    let streams: Vec<&str> = batch
        .iter()
        .flat_map(|r| r.parts.iter().map(|p| p.stream.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ids: Vec<Uuid> = batch
        .iter()
        .flat_map(|r| {
            r.ids()
                .filter(|id| lookup_generated || !r.generated.contains(id))
        })
        .map(|id| id.0)
        .collect();
    let streams_param: [&(dyn ToSql + Sync); 1] = [&streams];
    let ids_param: [&(dyn ToSql + Sync); 1] = [&ids];
    let check_params: Vec<Vec<&(dyn ToSql + Sync)>> =
        checks.iter().map(|c| param_refs(&c.params)).collect();
    // Statements of one connection run in the order they are sent, so the
    // position lock is taken after the stream rows (the order every append
    // takes them in) and each check's snapshot after the lock is held.
    let conditions = async {
        let Some(lock_position) = &statements.lock_position else {
            return Ok((None, Vec::new()));
        };
        let runs = statements
            .checks
            .iter()
            .zip(&check_params)
            .map(|(statement, params)| client.query(statement, params));
        let (row, found) = futures::try_join!(
            client.query_one(lock_position, &[]),
            futures::future::try_join_all(runs),
        )?;
        Ok((Some(row), found))
    };
    let phase1 = futures::try_join!(
        client.execute(&statements.begin, &[]),
        client.execute(&statements.ensure, &streams_param),
        client.query(&statements.lock, &streams_param),
        client.query(&statements.lookup, &ids_param),
        conditions,
    );
    let (_, _, head_rows, id_rows, (lock_row, found)) = match phase1 {
        Ok(r) => r,
        Err(e) => {
            rollback(client).await;
            return Err(Failure::from_db("locking streams", e));
        }
    };
    let decoded = decode_phase1(&head_rows, &id_rows).and_then(|(heads, recorded)| {
        let checked = decode_checks(batch.len(), checks, lock_row.as_ref(), &found)?;
        Ok((heads, recorded, checked))
    });
    match decoded {
        Ok(r) => Ok(r),
        Err(e) => {
            rollback(client).await;
            Err(Failure::Fatal(e))
        }
    }
}

/// The outcome of a committed batch under the serialized ordering: the
/// statement returned the position before the batch's first event.
fn committed_serialized(row: &tokio_postgres::Row, plan: &Plan<'_>) -> Result<Committed, Failure> {
    let base: i64 = row
        .try_get(0)
        .map_err(|e| Failure::Fatal(corrupt("global_position")(e)))?;
    let base = u64::try_from(base).map_err(|_| {
        Failure::Fatal(Error::Corrupt {
            location: "global_position".into(),
            reason: format!("negative position {base}"),
        })
    })?;
    Ok(Committed {
        outcomes: plan.resolve(|offset| Position(base + offset)),
        head: Some(Position(base + plan.total)),
        events: plan.total,
    })
}

/// The outcome of a committed batch under the naive ordering (test only):
/// each inserted row returned its own position.
fn committed_naive(rows: &[tokio_postgres::Row], plan: &Plan<'_>) -> Committed {
    let mut by_id: HashMap<Uuid, u64> = HashMap::with_capacity(rows.len());
    for row in rows {
        let p: i64 = row.get(0);
        let id: Uuid = row.get(1);
        by_id.insert(id, u64::try_from(p).unwrap_or(0));
    }
    let head = by_id.values().copied().max().map(Position);
    let ids = &plan.columns.ids;
    Committed {
        outcomes: plan.resolve(|offset| {
            let id = ids.get((offset - 1) as usize);
            Position(id.and_then(|id| by_id.get(id)).copied().unwrap_or(0))
        }),
        head,
        events: plan.total,
    }
}

fn decode_phase1(
    head_rows: &[tokio_postgres::Row],
    id_rows: &[tokio_postgres::Row],
) -> Result<(Heads, Recorded)> {
    let mut heads = HashMap::with_capacity(head_rows.len());
    for row in head_rows {
        let name: String = row.try_get(0).map_err(corrupt("streams.stream_id"))?;
        heads.insert(name, head_from_row(row, 1)?);
    }
    let mut recorded = HashMap::with_capacity(id_rows.len());
    for row in id_rows {
        let id: Uuid = row.try_get(0).map_err(corrupt("events.event_id"))?;
        let stream: String = row.try_get(1).map_err(corrupt("events.stream_id"))?;
        let version: i64 = row.try_get(2).map_err(corrupt("events.version"))?;
        let position = position_from_row_at(row, 3)?;
        recorded.insert(
            EventId(id),
            (stream, u64::try_from(version).unwrap_or(0), position),
        );
    }
    Ok((heads, recorded))
}

/// What the checks of a batch's conditions found: the last position taken
/// when the position lock was granted and each condition's first match.
fn decode_checks(
    requests: usize,
    checks: &[Check],
    lock_row: Option<&tokio_postgres::Row>,
    found: &[Vec<tokio_postgres::Row>],
) -> Result<Checked> {
    let mut checked = Checked {
        base: match lock_row {
            Some(row) => position_from_row_at(row, 0)?.0,
            None => 0,
        },
        matched: vec![None; requests],
    };
    for (check, rows) in checks.iter().zip(found) {
        if let Some(row) = rows.first() {
            checked.matched[check.index] = Some(position_from_row_at(row, 0)?);
        }
    }
    Ok(checked)
}

/// Prepares `text` in the connection's statement cache, emptying the cache
/// first when it holds [`MAX_CACHED_STATEMENTS`] (query reads and checks
/// come in as many shapes as their queries).
pub(crate) async fn prepare_bounded(
    client: &deadpool_postgres::Object,
    text: &str,
) -> std::result::Result<tokio_postgres::Statement, tokio_postgres::Error> {
    if client.statement_cache.size() >= MAX_CACHED_STATEMENTS {
        client.statement_cache.clear();
    }
    client.prepare_cached(text).await
}

fn position_from_row_at(row: &tokio_postgres::Row, at: usize) -> Result<Position> {
    let p: i64 = row.try_get(at).map_err(corrupt("events.position"))?;
    u64::try_from(p).map(Position).map_err(|_| Error::Corrupt {
        location: "events.position".into(),
        reason: format!("negative position {p}"),
    })
}

/// Rolls back whatever transaction is open; a failure here means the
/// connection is broken, and the pool drops it.
async fn rollback(client: &deadpool_postgres::Object) {
    if let Err(e) = client.batch_execute("ROLLBACK").await {
        tracing::debug!(error = %e, "rollback failed; the connection will be discarded");
    }
}
