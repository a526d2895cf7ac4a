//! Scavenging on PostgreSQL ([`StoreAdmin::scavenge`]): deletes the event
//! rows no read returns any more — of deleted and tombstoned streams, and
//! those retention cuts (`max_count`, `truncate_before`, `max_age`, and
//! every metadata event but the latest) — by the rule reads apply.
//!
//! It walks the streams that deletion or retention may cut in pages of
//! [`SCAVENGE_PLAN_STREAMS`] (`scavenge/plan.sql` gives each its cut, the
//! first version a read can still return, as of that page), then deletes
//! their rows below the cuts in batches of at most
//! [`PgConfig::scavenge_batch_rows`](crate::PgConfig::scavenge_batch_rows)
//! rows, each batch one statement in its own transaction
//! (`scavenge/delete.sql`). A batch skips rows another transaction holds
//! (`SKIP LOCKED`) and appends never lock existing rows, so neither waits
//! on the other beyond a batch's own statement. Positions never move:
//! `$all` readers and subscriptions never wait for a position (ADR 0005),
//! so a removed row is simply not there.
//!
//! Cuts only grow while the settings stay (heads grow, deletions and time
//! only advance); settings loosened while a page is being scavenged do not
//! bring back what it removes, as on the log store (ADR 0017). Erasure
//! removes rows at once, so `erased_only` has nothing to do. Emptied
//! partitions stay attached (`detach_partition` drops them from the
//! table); the space of deleted rows is reused after `VACUUM`
//! (docs/postgres.md, docs/adr/0019-postgres-scavenging.md).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use strata_core::{
    async_trait, Error, Result, ScavengeOptions, ScavengeReport, ScavengeStatus, StoreAdmin,
};

use crate::database::{db_error, Database};
use crate::migrate::to_i64;
use crate::read::{corrupt, version_from_row};
use crate::store::PostgresStore;

/// Streams one page of a scavenge's plan holds (and one batch's `UNNEST`
/// at most names).
pub const SCAVENGE_PLAN_STREAMS: usize = 1_000;

/// Event rows one scavenge batch deletes at most, unless configured
/// otherwise ([`PgConfig::scavenge_batch_rows`](crate::PgConfig::scavenge_batch_rows)).
pub const DEFAULT_SCAVENGE_BATCH_ROWS: u64 = 5_000;

/// The largest batch that can be configured.
pub const MAX_SCAVENGE_BATCH_ROWS: u64 = 1_000_000;

/// A scavenge's progress and the totals since the store opened.
#[derive(Debug, Default)]
pub(crate) struct ScavengeProgress {
    running: AtomicBool,
    streams_total: AtomicU64,
    streams_done: AtomicU64,
    batches: AtomicU64,
    events_removed: AtomicU64,
}

/// Clears the running flag however the scavenge ends.
struct RunningFlag<'a>(&'a AtomicBool);

impl Drop for RunningFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One page of the plan: the streams with rows to remove and their cuts,
/// and the last stream looked at.
struct Page {
    streams: Vec<String>,
    cuts: Vec<i64>,
    looked_at: usize,
    last: Option<String>,
}

/// Backups are the database's (`pg_dump`); scavenging deletes rows in
/// batches. On PostgreSQL a [`ScavengeReport`]'s segment and byte fields
/// are 0 (rows, not segments, are removed; `VACUUM` gives the space back
/// to the table), and [`ScavengeStatus`]'s `segments_total` and
/// `segments_done` count the streams the scavenge looks at.
#[async_trait]
impl StoreAdmin for PostgresStore {
    async fn backup(&self, dest: &std::path::Path) -> Result<strata_core::BackupReport> {
        let _ = dest;
        Err(Error::Unsupported {
            what: "backups of a PostgreSQL store through Strata: use the database's own \
                   tools (pg_dump / pg_restore, or continuous archiving), or `strata export` \
                   for a portable copy (docs/postgres.md)"
                .into(),
        })
    }

    async fn scavenge(&self, options: ScavengeOptions) -> Result<ScavengeReport> {
        let started = Instant::now();
        let database = self.database();
        let progress = &database.scavenge;
        if progress.running.swap(true, Ordering::AcqRel) {
            return Err(Error::invalid("a scavenge is already running"));
        }
        let _running = RunningFlag(&progress.running);
        let mut report = ScavengeReport::default();
        if !options.erased_only {
            report.events_removed = scavenge_rows(database).await?;
        }
        report.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            schema = %database.config.schema,
            events = report.events_removed,
            millis = report.millis,
            "scavenge finished"
        );
        Ok(report)
    }

    fn scavenge_status(&self) -> Option<ScavengeStatus> {
        let p = &self.database().scavenge;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(ScavengeStatus {
            running: p.running.load(Ordering::Relaxed),
            segments_total: load(&p.streams_total),
            segments_done: load(&p.streams_done),
            segments_rewritten: 0,
            events_removed: load(&p.events_removed),
            bytes_reclaimed: 0,
        })
    }
}

impl PostgresStore {
    /// Scavenge batches run since the store opened (each one statement in
    /// its own transaction).
    pub fn scavenge_batches(&self) -> u64 {
        self.database().scavenge.batches.load(Ordering::Relaxed)
    }
}

/// Walks the plan page by page and deletes each page's rows in batches;
/// returns how many rows went.
async fn scavenge_rows(database: &Database) -> Result<u64> {
    let progress = &database.scavenge;
    progress.streams_done.store(0, Ordering::Relaxed);
    progress
        .streams_total
        .store(count_streams(database).await?, Ordering::Relaxed);
    let mut removed = 0;
    let mut after = String::new();
    loop {
        let page = plan_page(database, &after).await?;
        if !page.streams.is_empty() {
            removed += delete_page(database, &page).await?;
        }
        progress
            .streams_done
            .fetch_add(page.looked_at as u64, Ordering::Relaxed);
        match page.last {
            Some(last) if page.looked_at == SCAVENGE_PLAN_STREAMS => after = last,
            _ => return Ok(removed),
        }
    }
}

async fn count_streams(database: &Database) -> Result<u64> {
    let text = &database.sql.scavenge_count;
    let n: i64 = database
        .read("counting the streams to scavenge", |client| async move {
            let row = client
                .query_one(text, &[])
                .await
                .map_err(db_error("counting the streams to scavenge"))?;
            Ok(row
                .try_get(0)
                .map_err(corrupt("the count of streams to scavenge"))?)
        })
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The plan's page of streams after `after` (by name).
async fn plan_page(database: &Database, after: &str) -> Result<Page> {
    let text = &database.sql.scavenge_plan;
    let limit = to_i64(SCAVENGE_PLAN_STREAMS as u64);
    let rows = database
        .read("planning a scavenge", |client| async move {
            let stmt = client
                .prepare_cached(text)
                .await
                .map_err(db_error("planning a scavenge"))?;
            client
                .query(&stmt, &[&after, &limit])
                .await
                .map_err(db_error("planning a scavenge"))
        })
        .await?;
    let mut page = Page {
        streams: Vec::new(),
        cuts: Vec::new(),
        looked_at: rows.len(),
        last: None,
    };
    for row in &rows {
        let name: String = row.try_get(0).map_err(corrupt("streams.stream_id"))?;
        let cut = version_from_row(row, 1, "the scavenge's cut")?;
        let has_rows: bool = row.try_get(2).map_err(corrupt("the scavenge's plan"))?;
        if has_rows {
            page.streams.push(name.clone());
            page.cuts.push(to_i64(cut));
        }
        page.last = Some(name);
    }
    Ok(page)
}

/// Deletes the rows of `page` below its cuts, one bounded batch (and
/// transaction) at a time, until a batch comes back short.
async fn delete_page(database: &Database, page: &Page) -> Result<u64> {
    let text = &database.sql.scavenge_delete;
    let batch = to_i64(database.config.scavenge_batch_rows);
    let (streams, cuts) = (&page.streams, &page.cuts);
    let mut removed = 0;
    loop {
        // Idempotent (it deletes what is left below the cuts), so a
        // dropped connection is simply run again.
        let n: i64 = database
            .read("scavenging", |client| async move {
                let stmt = client
                    .prepare_cached(text)
                    .await
                    .map_err(db_error("scavenging"))?;
                let row = client
                    .query_one(&stmt, &[streams, cuts, &batch])
                    .await
                    .map_err(db_error("scavenging"))?;
                Ok(row.try_get(0).map_err(corrupt("the scavenged rows"))?)
            })
            .await?;
        let progress = &database.scavenge;
        progress.batches.fetch_add(1, Ordering::Relaxed);
        let n = u64::try_from(n).unwrap_or(0);
        progress.events_removed.fetch_add(n, Ordering::Relaxed);
        removed += n;
        if n < database.config.scavenge_batch_rows {
            return Ok(removed);
        }
    }
}
