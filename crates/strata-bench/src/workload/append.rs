//! `append`: concurrent writers, each append `--batch` fresh ~200-byte JSON
//! events to a random stream among `--streams`, with `ExpectedVersion::Any`
//! (no guard contention: this measures the write path and group commit).
//!
//! With `--subscriber`, one `EventStore::subscribe` consumer follows the
//! run's streams from the head at the start and measures delivery latency
//! (each event's data carries its send time; see [`crate::delivery`]), and checks
//! that it sees every appended event exactly once, in position order.
//!
//! On PostgreSQL the run ends with the `raw-insert` baseline, with the same
//! writer count and up to [`raw_insert::MAX_BASELINE_ROWS`] rows: a second
//! result line, and the append line's `ratio_to_raw_insert`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_core::ExpectedVersion;

use super::raw_insert;
use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::delivery::{now_us, AckLog};
use crate::report::Measurement;
use crate::store_sub::{self, WritersDone};
use crate::{payload, BenchError};

/// `append` defaults: one writer, one event per append, 10,000 events, 1,000 streams.
pub const DEFAULTS: Defaults = Defaults {
    writers: 1,
    batch: 1,
    events: 10_000,
    streams: 1_000,
};

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let batch = p.batch as u64;
    let total_events = p.events;
    let appends = total_events.div_ceil(batch);
    let next_append = Arc::new(AtomicU64::new(0));
    let bar = ctx.progress(total_events, "append");
    let (writers_done, done) = WritersDone::new();
    let subscriber = if p.subscriber {
        let prefix = payload::stream_prefix(&ctx.run_id);
        Some(store_sub::start(ctx.store(), prefix, total_events, done).await?)
    } else {
        None
    };
    let stamped = p.subscriber;
    let acks = Arc::new(if stamped {
        AckLog::new(appends, total_events)
    } else {
        AckLog::default()
    });
    let syncs_before = ctx.syncs();
    let started = Instant::now();
    let written = run_tasks(p.writers, |writer| {
        let store = ctx.store();
        let next_append = next_append.clone();
        let acks = acks.clone();
        let bar = bar.clone();
        let run_id = ctx.run_id.clone();
        let streams = p.streams;
        async move {
            let mut rng = StdRng::seed_from_u64(writer as u64);
            let mut t = Tally::default();
            loop {
                let i = next_append.fetch_add(1, Ordering::Relaxed);
                if i >= appends {
                    break;
                }
                let first = i * batch;
                let n = batch.min(total_events - first);
                let stream = payload::stream(&run_id, rng.gen_range(0..streams))?;
                let sent_us = stamped.then(now_us);
                let events = payload::stamped_events(first, n as usize, sent_us);
                let t0 = Instant::now();
                store.append(&stream, ExpectedVersion::Any, events).await?;
                if stamped {
                    acks.acked(i, now_us());
                }
                t.latency.record(t0.elapsed());
                t.ops += 1;
                t.events += n;
                bar.inc(n);
            }
            Ok(t)
        }
    })
    .await;
    let elapsed = started.elapsed();
    writers_done.done();
    bar.finish_and_clear();
    let (tally, delivery) = match (written, subscriber) {
        (Ok(t), None) => (t, None),
        (Ok(t), Some(sub)) => {
            let mut d = store_sub::join(sub).await?;
            d.add_after_ack(&acks, batch);
            (t, Some(d))
        }
        (Err(e), sub) => {
            if let Some(sub) = sub {
                sub.abort();
            }
            return Err(e);
        }
    };
    let mut out = vec![Measurement {
        workload: None,
        variant: None,
        op: "append",
        writers: p.writers,
        batch: p.batch,
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: ctx.syncs().zip(syncs_before).map(|(a, b)| a - b),
        errors: tally.errors,
        dataset_events: None,
        subscriber: delivery,
        pipeline: None,
    }];
    // On PostgreSQL, the database's own rate with the same writer count, so
    // the report can give ours as a ratio of it.
    if let Some(pg) = ctx.postgres() {
        let rows = total_events.min(raw_insert::MAX_BASELINE_ROWS);
        out.push(raw_insert::measure(ctx, pg, rows).await?);
    }
    Ok(out)
}
