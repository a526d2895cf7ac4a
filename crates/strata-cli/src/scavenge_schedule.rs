//! `strata serve --scavenge-every SECONDS`: scavenges on a schedule, in the
//! background, while the server serves. Each run is the same as `POST
//! /admin/scavenge` (throttled, one at a time: a run that finds another
//! still going is skipped) and prints one line to stderr.

use std::sync::Arc;
use std::time::Duration;

use strata_core::{Error, ScavengeOptions, StoreAdmin};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

/// The shortest schedule `--scavenge-every` accepts, in seconds.
pub const MIN_SCAVENGE_EVERY_S: u64 = 1;

/// Checks `--scavenge-every`.
pub fn check(every_s: u64) -> Result<Duration, String> {
    if every_s < MIN_SCAVENGE_EVERY_S {
        return Err(format!(
            "--scavenge-every must be at least {MIN_SCAVENGE_EVERY_S} second(s)"
        ));
    }
    Ok(Duration::from_secs(every_s))
}

/// Starts the schedule: the first run one period from now.
pub fn spawn(admin: Arc<dyn StoreAdmin>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match admin.scavenge(ScavengeOptions::default()).await {
                Ok(r) => eprintln!(
                    "strata: scheduled scavenge: {} of {} segments rewritten, {} events removed, {} bytes reclaimed, {:.1} s",
                    r.segments_rewritten,
                    r.segments_scanned,
                    r.events_removed,
                    r.bytes_before.saturating_sub(r.bytes_after),
                    r.millis as f64 / 1000.0
                ),
                Err(Error::InvalidInput { reason }) => {
                    eprintln!("strata: scheduled scavenge skipped: {reason}")
                }
                Err(e) => eprintln!("strata: scheduled scavenge failed: {e}"),
            }
        }
    })
}
