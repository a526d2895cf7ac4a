//! `strata scavenge --store SPEC`: reclaims the space of events no read
//! can return (deleted, tombstoned and erased streams, retention), with a
//! progress bar and a summary line. The log store rewrites sealed segments;
//! PostgreSQL deletes rows in bounded batches.

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
    /// server use `POST /admin/scavenge`) or `postgres://…`.
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
    /// The store does not scavenge.
    #[error("this store does not scavenge (the memory store keeps nothing on disk)")]
    Unsupported,
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
    let admin = open.admin().ok_or(ScavengeError::Unsupported)?;
    let options = ScavengeOptions { erased_only };
    let bar = progress(None, "scavenge");
    let work = admin.scavenge(options);
    tokio::pin!(work);
    let report = loop {
        tokio::select! {
            r = &mut work => break r?,
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                if let Some(status) = admin.scavenge_status() {
                    bar.set_length(status.segments_total);
                    bar.set_position(status.segments_done);
                }
            }
        }
    };
    bar.finish_and_clear();
    Ok(report)
}

/// The one-line summary: segments and bytes where the store rewrites
/// files, events (rows) alone where it deletes them.
fn summary(r: &ScavengeReport) -> String {
    if r.segments_scanned == 0 && r.bytes_before == 0 {
        return format!(
            "scavenged: {} events removed, {:.1} s",
            r.events_removed,
            r.millis as f64 / 1000.0
        );
    }
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
