//! `strata scavenge --store log:DIR`: reclaims the space of events no read
//! can return (deleted, tombstoned and erased streams, retention), with a
//! progress bar and a summary line.

use std::time::Duration;

use clap::Args;
use strata_core::{ScavengeOptions, ScavengeReport};
use strata_stores::{OpenOptions, StoreSpec, DEFAULT_STORE};

use crate::data::progress;

/// How often the progress bar is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// `strata scavenge` options.
#[derive(Args, Debug)]
pub struct ScavengeArgs {
    /// The store: `log:DIR` (it must not be open elsewhere; for a running
    /// server use `POST /admin/scavenge`).
    #[arg(long, default_value = DEFAULT_STORE)]
    pub store: StoreSpec,
    /// Only rewrite segments holding events of erased streams.
    #[arg(long)]
    pub erased_only: bool,
}

/// Why `strata scavenge` failed.
#[derive(Debug, thiserror::Error)]
pub enum ScavengeError {
    /// The store could not be opened.
    #[error("{0}")]
    Open(#[from] strata_stores::OpenError),
    /// The store is not a log store.
    #[error("only the log store is scavenged (PostgreSQL removes rows as it goes; memory keeps nothing)")]
    NotLog,
    /// The scavenge failed.
    #[error("{0}")]
    Store(#[from] strata_core::Error),
}

/// Runs `strata scavenge`.
pub async fn run(args: ScavengeArgs) -> Result<(), ScavengeError> {
    let open = args.store.open(&OpenOptions::default()).await?;
    let result = scavenge(&open, args.erased_only).await;
    let closed = open.close().await;
    let report = result?;
    closed?;
    println!("{}", summary(&report));
    Ok(())
}

async fn scavenge(
    open: &strata_stores::OpenStore,
    erased_only: bool,
) -> Result<ScavengeReport, ScavengeError> {
    let log = open.log_store().ok_or(ScavengeError::NotLog)?;
    let options = ScavengeOptions { erased_only };
    let bar = progress(None, "scavenge");
    let work = log.scavenge(options);
    tokio::pin!(work);
    let report = loop {
        tokio::select! {
            r = &mut work => break r?,
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                let p = log.scavenge_progress();
                let total = p.segments_total.load(std::sync::atomic::Ordering::Relaxed);
                bar.set_length(total);
                bar.set_position(p.segments_done.load(std::sync::atomic::Ordering::Relaxed));
            }
        }
    };
    bar.finish_and_clear();
    Ok(report)
}

/// The one-line summary.
fn summary(r: &ScavengeReport) -> String {
    format!(
        "scavenged: {} of {} segments rewritten, {} events removed, {} -> {} bytes ({} reclaimed), {:.1} s",
        r.segments_rewritten,
        r.segments_scanned,
        r.events_removed,
        r.bytes_before,
        r.bytes_after,
        r.bytes_before.saturating_sub(r.bytes_after),
        r.millis as f64 / 1000.0
    )
}
