//! `dcb`: the course-subscription decision (`strata::decision::courses`)
//! through `strata::decision::DecisionRunner`: read both boundaries to the
//! head, decide, append with the condition. Once with one writer, once with
//! `--writers` (default 16), each for `--duration` seconds, over
//! `--streams` courses (default 10,000) and ten times as many students,
//! picked at random; latency per decision (read + decide + append),
//! conflicts, refusals and, in-process on the log store, the store's syncs
//! (how many decisions share one) reported beside.
//!
//! The decisions run in-process on the store ([`run`]), or with `--server`
//! through the HTTP API ([`http::run`]): the same rounds over another
//! [`DecisionStore`].

pub(crate) mod http;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata::decision::courses::{Courses, Subscribe};
use strata::decision::{DecisionError, DecisionRunner, DecisionStore};
use strata::RetryPolicy;

use crate::args::{Defaults, Params};
use crate::context::{run_tasks, BenchCtx, Tally};
use crate::host::Console;
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

/// Runs the workload in-process on the store of `ctx`.
pub async fn run(ctx: &BenchCtx<'_>) -> Result<Vec<Measurement>, BenchError> {
    let store = ctx.store();
    let syncs = || ctx.syncs();
    let rounds = Rounds {
        params: &ctx.params,
        run_id: &ctx.run_id,
        console: ctx.host.console,
        syncs: &syncs,
    };
    rounds.run(|| Ok(Arc::clone(&store))).await
}

/// The rounds of one run: one writer, then `--writers`.
pub(crate) struct Rounds<'a> {
    /// The resolved options.
    pub params: &'a Params,
    /// A suffix unique to the run, for fresh course and student names.
    pub run_id: &'a str,
    /// Where the notes go.
    pub console: &'a dyn Console,
    /// The store's durable syncs so far, when the bench can see them.
    pub syncs: &'a (dyn Fn() -> Option<u64> + Sync),
}

impl Rounds<'_> {
    /// Runs both rounds; each writer decides over a store `store()` makes.
    pub(crate) async fn run<S, F>(&self, store: F) -> Result<Vec<Measurement>, BenchError>
    where
        S: DecisionStore,
        F: Fn() -> Result<S, BenchError>,
    {
        let mut out = Vec::new();
        let mut counts = vec![1];
        if self.params.writers != 1 {
            counts.push(self.params.writers);
        }
        for (round, writers) in counts.into_iter().enumerate() {
            let runners = (0..writers)
                .map(|_| {
                    let retry = RetryPolicy::default().with_max_attempts(MAX_ATTEMPTS);
                    Ok(Arc::new(DecisionRunner::with_retry(store()?, retry)))
                })
                .collect::<Result<Vec<_>, BenchError>>()?;
            let refused = Arc::new(AtomicU64::new(0));
            let syncs_before = (self.syncs)();
            let began = Instant::now();
            let prefix = format!("{}r{round}", self.run_id);
            let tally = self.decide_for(&runners, &refused, &prefix).await?;
            let elapsed = began.elapsed();
            let syncs = (self.syncs)().zip(syncs_before).map(|(a, b)| a - b);
            let conflicts: u64 = runners.iter().map(|r| r.conflicts()).sum();
            self.console.note(&format!(
                "dcb with {writers} writer(s): {} decisions ({} subscribed, {} refused by the \
                 rules), {conflicts} conflicts retried ({:.2}% of decisions)",
                tally.ops,
                tally.events,
                refused.load(Ordering::Relaxed),
                100.0 * conflicts as f64 / tally.ops.max(1) as f64,
            ));
            out.push(measurement(writers, tally, elapsed, syncs));
        }
        Ok(out)
    }

    /// One task per runner decides until `--duration` is over.
    async fn decide_for<S: DecisionStore>(
        &self,
        runners: &[Arc<DecisionRunner<S>>],
        refused: &Arc<AtomicU64>,
        prefix: &str,
    ) -> Result<Tally, BenchError> {
        let courses = self.params.streams.max(1) as u64;
        let students = courses * STUDENTS_PER_COURSE;
        let until = Instant::now() + self.params.duration;
        run_tasks(runners.len(), |w| {
            let (runner, refused) = (Arc::clone(&runners[w]), Arc::clone(refused));
            let prefix = prefix.to_owned();
            async move {
                let mut t = Tally::default();
                let mut rng =
                    0x9e37_79b9_7f4a_7c15u64 ^ (w as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
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
                    // A store that never waits (memory) would let one task
                    // run the whole round and starve the others.
                    tokio::task::yield_now().await;
                }
                Ok(t)
            }
        })
        .await
    }
}

/// The result line of one round.
fn measurement(writers: usize, tally: Tally, elapsed: Duration, syncs: Option<u64>) -> Measurement {
    Measurement {
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
        pipeline: None,
    }
}

/// splitmix64: a cheap, seeded sequence for picking courses and students.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}
