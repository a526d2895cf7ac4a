//! `read-stream`: write one stream of `--events` events, then read it whole,
//! again and again for `--duration` seconds, with `--writers` concurrent
//! readers; latency per full-stream read.

use std::time::Instant;

use super::fill;
use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::{payload, BenchError};

/// `read-stream` defaults: one reader, a stream of 1,000 events.
pub const DEFAULTS: Defaults = Defaults {
    writers: 1,
    batch: 1_000,
    events: 1_000,
    streams: 1,
};

/// Untimed reads before measuring.
const WARMUP_READS: usize = 10;

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let stream = payload::stream(&ctx.run_id, 0)?;
    let length = p.events;
    fill::one_stream(ctx, &stream, length).await?;
    let store = ctx.store();
    for _ in 0..WARMUP_READS {
        fill::read_whole_stream(store.as_ref(), &stream, length).await?;
    }
    let syncs_before = ctx.syncs();
    let deadline = p.duration;
    let started = Instant::now();
    let tally = run_tasks(p.writers, |_| {
        let store = ctx.store();
        let stream = stream.clone();
        async move {
            let mut t = Tally::default();
            while t.ops == 0 || started.elapsed() < deadline {
                let t0 = Instant::now();
                let n = fill::read_whole_stream(store.as_ref(), &stream, length).await?;
                t.latency.record(t0.elapsed());
                if n != length {
                    return Err(format!(
                        "read {n} events from {stream}, expected {length}: the store lost events"
                    )
                    .into());
                }
                t.ops += 1;
                t.events += n;
            }
            Ok(t)
        }
    })
    .await?;
    let elapsed = started.elapsed();
    Ok(vec![Measurement {
        workload: None,
        variant: None,
        op: "stream read",
        writers: p.writers,
        batch: usize::try_from(length).unwrap_or(usize::MAX),
        events: tally.events,
        ops: tally.ops,
        elapsed,
        latency: tally.latency,
        syncs: ctx.syncs().zip(syncs_before).map(|(a, b)| a - b),
        errors: tally.errors,
        dataset_events: Some(length),
        subscriber: None,
        pipeline: None,
    }])
}
