//! `dcb`: the course-subscription decision (`strata::decision::courses`)
//! through `strata::decision::DecisionRunner`: read both boundaries to the
//! head, decide, append with the condition. Once with one writer, once with
//! `--writers` (default 16), each for `--duration` seconds, over
//! `--streams` courses (default 10,000) and ten times as many students,
//! picked at random; latency per decision (read + decide + append),
//! conflicts, refusals and the store's syncs (how many decisions share
//! one) reported beside.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use strata::decision::courses::{Courses, Subscribe};
use strata::decision::{DecisionError, DecisionRunner};
use strata::{EventStore, RetryPolicy};

use crate::args::Defaults;
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::report::Measurement;
use crate::BenchError;

/// `dcb` defaults: 16 writers, 10,000 courses, so a 10-second round does
/// not fill them all (`--events` is unused: the rounds run for `--duration`).
pub const DEFAULTS: Defaults = Defaults {
    writers: 16,
    batch: 1,
    events: 1,
    streams: 10_000,
};

/// Students per course in the population the writers pick from.
const STUDENTS_PER_COURSE: u64 = 10;
/// Attempts per decision before a conflict is counted as an error.
const MAX_ATTEMPTS: u32 = 50;

type Runner = Arc<DecisionRunner<Arc<dyn EventStore>>>;

/// Runs the workload.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let p = ctx.params;
    let mut out = Vec::new();
    let mut counts = vec![1];
    if p.writers != 1 {
        counts.push(p.writers);
    }
    for (round, writers) in counts.into_iter().enumerate() {
        let retry = RetryPolicy::default().with_max_attempts(MAX_ATTEMPTS);
        let runner: Runner = Arc::new(DecisionRunner::with_retry(ctx.store(), retry));
        let refused = Arc::new(AtomicU64::new(0));
        let syncs_before = ctx.syncs();
        let began = Instant::now();
        let tally = decide_for(ctx, &runner, writers, &refused, round).await?;
        let elapsed = began.elapsed();
        let syncs = ctx.syncs().zip(syncs_before).map(|(a, b)| a - b);
        ctx.note(&format!(
            "dcb with {writers} writer(s): {} decisions ({} subscribed, {} refused by the rules), \
             {} conflicts retried ({:.2}% of decisions)",
            tally.ops,
            tally.events,
            refused.load(Ordering::Relaxed),
            runner.conflicts(),
            100.0 * runner.conflicts() as f64 / tally.ops.max(1) as f64,
        ));
        out.push(Measurement {
            workload: None,
            variant: Some(if writers == 1 { "1 writer" } else { "writers" }),
            op: "decision",
            writers,
            batch: 1,
            events: tally.events,
            ops: tally.ops,
            elapsed,
            latency: tally.latency,
            syncs,
            errors: tally.errors,
            dataset_events: None,
            subscriber: None,
        });
    }
    Ok(out)
}

/// `writers` tasks decide until `--duration` is over.
async fn decide_for(
    ctx: &BenchCtx<'_>,
    runner: &Runner,
    writers: usize,
    refused: &Arc<AtomicU64>,
    round: usize,
) -> Result<Tally, BenchError> {
    let p = ctx.params;
    let courses = p.streams.max(1) as u64;
    let students = courses * STUDENTS_PER_COURSE;
    let until = Instant::now() + p.duration;
    let prefix = format!("{}r{round}", ctx.run_id);
    run_tasks(writers, |w| {
        let (runner, refused, prefix) = (Arc::clone(runner), Arc::clone(refused), prefix.clone());
        async move {
            let mut t = Tally::default();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ (w as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            while Instant::now() < until {
                let c = Subscribe {
                    course: format!("{prefix}c{}", next(&mut rng) % courses),
                    student: format!("{prefix}s{}", next(&mut rng) % students),
                };
                let t0 = Instant::now();
                match runner.execute::<Courses>(&c).await {
                    Ok(o) => t.events += o.events as u64,
                    Err(DecisionError::Rejected(_)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(DecisionError::Conflict { .. }) => t.errors += 1,
                    Err(e) => return Err(e.to_string().into()),
                }
                t.latency.record(t0.elapsed());
                t.ops += 1;
                // A store that never waits (memory) would let one task run
                // the whole round and starve the others.
                tokio::task::yield_now().await;
            }
            Ok(t)
        }
    })
    .await
}

/// splitmix64: a cheap, seeded sequence for picking courses and students.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
