//! `raw-insert`: the database's own rate, the baseline of the PostgreSQL
//! store. `--writers` connections each insert one ~200-byte JSON event at a
//! time (autocommit, no checks) into `raw_events`, a table shaped like the
//! store's `events` (same columns and indexes, a plain `bigserial` position;
//! [`crate::baseline`]), in the benchmark's schema; `--events` rows in
//! all, spread over random streams among `--streams`; latency per insert.
//!
//! `append` on PostgreSQL runs this too, with its writer count, and reports
//! its own rate as a ratio of this one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::{ContentType, EventId, StreamId};
use strata_postgres::PostgresStore;
use tokio_postgres::{Client, NoTls, Statement};

use crate::args::Defaults;
use crate::baseline;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::{payload, BenchError};

/// `raw-insert` defaults: one connection, 10,000 rows over 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 1,
    batch: 1,
    events: 10_000,
    streams: 1_000,
};

/// Most rows the baseline inserts when `append` runs it (its rate, not its
/// size, is what is compared; single-row inserts of a large run would take
/// longer than the run itself).
pub const MAX_BASELINE_ROWS: u64 = 50_000;

/// One writer's connection and its prepared insert.
type Conn = (Client, Statement);

/// The workload's name in results.
pub const WORKLOAD: &str = "raw-insert";

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let pg = ctx.postgres().ok_or(
        "the raw-insert workload measures PostgreSQL itself: it needs --store postgres://…",
    )?;
    Ok(vec![measure(ctx, pg, ctx.params.events).await?])
}

/// Inserts `rows` rows with `--writers` connections and measures them.
pub async fn measure(
    ctx: &BenchCtx<'_>,
    pg: &PostgresStore,
    rows: u64,
) -> Result<Measurement, BenchError> {
    let writers = ctx.params.writers;
    // Connections are opened and statements prepared before the clock starts.
    let slots = Arc::new(Mutex::new(connect_writers(pg, writers).await?));
    let next = Arc::new(AtomicU64::new(0));
    let bar = ctx.progress(rows, WORKLOAD);
    let started = Instant::now();
    let tally = run_tasks(writers, |writer| {
        let slot = slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(writer)
            .and_then(Option::take);
        let (next, bar, run_id) = (next.clone(), bar.clone(), ctx.run_id.clone());
        let streams = ctx.params.streams;
        async move {
            let conn = slot.ok_or("raw-insert: a connection went missing")?;
            let mut rng = StdRng::seed_from_u64(writer as u64 + 500);
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= rows {
                    break;
                }
                let stream = payload::stream(&run_id, rng.gen_range(0..streams))?;
                let event = payload::event(i);
                // Row i is version i + 1 of its stream: unique, never checked.
                let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
                let t0 = Instant::now();
                insert_row(&conn, &stream, version, &event.data).await?;
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += 1;
                bar.inc(1);
            }
            Ok(t)
        }
    })
    .await?;
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok(Measurement {
        workload: Some(WORKLOAD),
        variant: None,
        op: "insert",
        writers,
        batch: 1,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: None,
        errors: tally.errors,
        dataset_events: None,
        subscriber: None,
        pipeline: None,
    })
}

/// Creates `raw_events` in the store's schema and opens `writers`
/// connections to the store's database, each with the insert prepared.
async fn connect_writers(
    pg: &PostgresStore,
    writers: usize,
) -> Result<Vec<Option<Conn>>, BenchError> {
    let schema = pg.schema().to_string();
    let config: tokio_postgres::Config = pg
        .config()
        .url()
        .parse()
        .map_err(|e| format!("cannot parse the database URL: {e}"))?;
    let connect = || async {
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| format!("raw-insert: cannot connect: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok::<Client, BenchError>(client)
    };
    let setup = connect().await?;
    baseline::create_raw_events_table(&setup, &schema).await?;
    drop(setup);
    let sql = baseline::raw_insert_sql(&schema)?;
    let mut slots = Vec::with_capacity(writers);
    for _ in 0..writers {
        let client = connect().await?;
        let stmt = client
            .prepare(&sql)
            .await
            .map_err(|e| format!("raw-insert: cannot prepare the insert: {e}"))?;
        slots.push(Some((client, stmt)));
    }
    Ok(slots)
}

/// Inserts one row: a JSON event `data` at `version` of `stream`.
async fn insert_row(
    (client, stmt): &Conn,
    stream: &StreamId,
    version: i64,
    data: &[u8],
) -> Result<(), BenchError> {
    let content_type = i16::from(ContentType::Json.code());
    client
        .execute(
            stmt,
            &[
                &EventId::new().0,
                &stream.as_str(),
                &version,
                &payload::EVENT_TYPE,
                &content_type,
                &data,
            ],
        )
        .await
        .map_err(|e| format!("raw-insert: {e}"))?;
    Ok(())
}
