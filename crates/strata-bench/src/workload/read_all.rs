//! `read-all`: fill the store up to `--events` events (unless it has them),
//! read `$all` once to warm it, then read it whole again and again for
//! `--duration` seconds in pages of `--batch`, with `--writers` concurrent
//! readers; latency per page.

use std::time::Instant;

use strata_core::{Position, ReadFilter};

use super::fill;
use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::BenchError;

/// `read-all` defaults: one reader, pages of 10,000, 100,000 events written
/// to 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 1,
    batch: 10_000,
    events: 100_000,
    streams: 1_000,
};

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let existing = fill::count_all(ctx, p.batch, "count").await?;
    if existing < p.events {
        fill::random_streams(ctx, existing, p.events - existing).await?;
        // Warm: the first read after a fill pays for whatever is still cold.
        fill::count_all(ctx, p.batch, "warm").await?;
    }
    let syncs_before = ctx.syncs();
    let started = Instant::now();
    let mut total = Tally::default();
    // Whole passes until the time is up, so every pass reads everything.
    while total.ops == 0 || started.elapsed() < p.duration {
        let pass = run_tasks(p.writers, |_| {
            let store = ctx.store();
            let page = p.batch;
            async move {
                let mut t = Tally::default();
                let mut from = Position::START;
                let filter = ReadFilter::all();
                loop {
                    let t0 = Instant::now();
                    let events = store.read_all(from, page, &filter).await?;
                    t.latency.record(t0.elapsed());
                    t.ops += 1;
                    t.events += events.len() as u64;
                    let Some(last) = events.last() else { break };
                    from = last.position.next();
                    if events.len() < page {
                        break;
                    }
                }
                Ok(t)
            }
        })
        .await?;
        total.merge(pass);
    }
    let elapsed = started.elapsed();
    Ok(vec![Measurement {
        workload: None,
        variant: None,
        op: "page",
        writers: p.writers,
        batch: p.batch,
        events: total.events,
        ops: total.ops,
        elapsed,
        latency: total.latency,
        syncs: ctx.syncs().zip(syncs_before).map(|(a, b)| a - b),
        errors: total.errors,
        dataset_events: Some(existing.max(p.events)),
        subscriber: None,
        pipeline: None,
    }])
}
