//! `project`: projection catch-up throughput (a counting projection,
//! single-threaded) and the event processor over a handler that does real
//! work, sequential against `--writers` parallel workers (default 2). The
//! store is first filled to `--events` events on interleaved streams.

use crate::args::Defaults;
use crate::context::BenchCtx;
use crate::latency::Latency;
use crate::report::Measurement;
use crate::BenchError;

/// `project` defaults: 1,000,000 events, 2 workers in the parallel run.
pub const DEFAULTS: Defaults = Defaults {
    writers: 2,
    batch: 1,
    events: 1_000_000,
    streams: 1_000,
};

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let r = crate::catch_up::project(ctx.store(), p.events, p.writers)
        .await
        .map_err(|e| format!("project benchmark failed: {e}"))?;
    let line = |variant: &'static str, workers: usize, c: &strata::CatchUpReport| Measurement {
        workload: None,
        variant: Some(variant),
        op: "catch-up",
        writers: workers,
        batch: p.batch,
        events: c.events,
        ops: c.pages,
        elapsed: c.elapsed,
        latency: Latency::default(),
        syncs: None,
        errors: 0,
        dataset_events: Some(r.events),
        subscriber: None,
        pipeline: None,
    };
    ctx.note(&format!(
        "parallel speed-up with {} workers on the working handler: {:.2}x",
        r.workers,
        r.speedup()
    ));
    Ok(vec![
        line("counting projection", 1, &r.catch_up),
        line("processor, 1 worker", 1, &r.sequential),
        line("processor, parallel", r.workers, &r.parallel),
    ])
}
