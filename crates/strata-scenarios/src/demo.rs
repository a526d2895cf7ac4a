//! What the scenario demos share: their options' limits, their error, a
//! fresh run id and throughput figures.
//!
//! Each scenario has a driver beside it ([`trading::demo`](super::trading::demo),
//! [`game::demo`](super::game::demo), [`audit::demo`](super::audit::demo)):
//! it generates a realistic load from a seed, runs it on any
//! `Arc<dyn EventStore>`, checks the read side against the write side and
//! returns a report whose `Display` is what `strata demo <name>` and the
//! examples print. The drivers never print.

use std::fmt;
use std::time::Duration;

use strata::projection::ProjectionError;

/// Most tasks a demo runs at once (`--concurrency`).
pub const MAX_DEMO_CONCURRENCY: usize = 4_096;

/// Why a demo could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// An option is out of range.
    #[error("invalid demo option: {0}")]
    Options(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] strata_core::Error),
    /// A command that the load expected to succeed (or to be refused) did not.
    #[error("a command failed: {0}")]
    Command(String),
    /// A projection or processor failed.
    #[error("a projection failed: {0}")]
    Projection(String),
    /// The read side does not agree with the write side.
    #[error("check failed: {0}")]
    Check(String),
    /// A load task panicked or was cancelled.
    #[error("a load task did not finish: {0}")]
    Task(String),
}

impl From<ProjectionError> for DemoError {
    fn from(e: ProjectionError) -> Self {
        DemoError::Projection(e.to_string())
    }
}

impl From<tokio::task::JoinError> for DemoError {
    fn from(e: tokio::task::JoinError) -> Self {
        DemoError::Task(e.to_string())
    }
}

/// A run id no earlier run used: `r` and 12 hex digits of a random UUID.
/// It names the run's streams (`order-{run}.{i}`, `game-{run}.{g}`,
/// `audit-{run}_svc{l}`), so runs can be repeated on the same store and each
/// checks only its own data. It holds no `-`, which would change the
/// streams' category.
pub fn fresh_run_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("r{}", &id[..12])
}

/// `n` per second over `d` (0 for a zero duration).
pub fn per_second(n: u64, d: Duration) -> f64 {
    let secs = d.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Checks `value` is in `1..=max`.
pub(crate) fn check_range(name: &str, value: usize, max: usize) -> Result<(), DemoError> {
    if value == 0 || value > max {
        return Err(DemoError::Options(format!(
            "{name} must be 1 to {max}, got {value}"
        )));
    }
    Ok(())
}

/// One catch-up of a projection or processor, as the demos report it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CatchUp {
    /// Events handed to it.
    pub events: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl CatchUp {
    pub(crate) fn of(report: &strata::CatchUpReport) -> Self {
        CatchUp {
            events: report.events,
            elapsed: report.elapsed,
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events in {:.2?} ({:.0} events/s)",
            self.events,
            self.elapsed,
            per_second(self.events, self.elapsed)
        )
    }
}
