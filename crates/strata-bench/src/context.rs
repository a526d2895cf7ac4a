//! What a workload gets to work with ([`BenchCtx`]), and how its tasks are
//! run and counted ([`run_tasks`], [`Tally`]).

use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use strata_core::EventStore;
use strata_stores::OpenStore;

use crate::args::Params;
use crate::host::Host;
use crate::latency::Latency;
use crate::BenchError;

/// What a workload gets to work with.
pub struct BenchCtx<'a> {
    pub(crate) open: &'a OpenStore,
    /// The resolved options.
    pub params: Params,
    /// A suffix unique to this run, for fresh stream names.
    pub run_id: String,
    pub(crate) show_progress: bool,
    pub(crate) host: &'a Host<'a>,
}

impl BenchCtx<'_> {
    /// The store under test.
    pub fn store(&self) -> Arc<dyn EventStore> {
        self.open.store()
    }

    /// The PostgreSQL store under test, when it is one.
    pub fn postgres(&self) -> Option<&strata_postgres::PostgresStore> {
        self.open.postgres_store()
    }

    /// `fdatasync` calls of the log store so far (`None` for other stores).
    pub fn syncs(&self) -> Option<u64> {
        self.open.log_store().map(|l| l.sync_count())
    }

    /// Writes a note on the run (stderr for `strata bench`).
    pub fn note(&self, line: &str) {
        self.host.console.note(line);
    }

    /// A progress bar of `len` units, drawn on stderr when it is a terminal.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        if !self.show_progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>14} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        bar
    }
}

/// What one task of a workload counted.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latency of each timed operation.
    pub latency: Latency,
    /// Timed operations.
    pub ops: u64,
    /// Events written or read by them.
    pub events: u64,
    /// Operations that failed.
    pub errors: u64,
}

impl Tally {
    pub(crate) fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.ops += other.ops;
        self.events += other.events;
        self.errors += other.errors;
    }
}

/// Runs `n` tasks `task(0)`, …, `task(n - 1)` concurrently and adds up what
/// they counted; the first error wins.
pub async fn run_tasks<F, Fut>(n: usize, task: F) -> Result<Tally, BenchError>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Tally, BenchError>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(task(i))).collect();
    let mut total = Tally::default();
    let mut first_error = None;
    for h in handles {
        match h.await {
            Ok(Ok(t)) => total.merge(t),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(format!("a benchmark task failed: {e}").into());
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}
