//! The log store's maintenance face ([`StoreAdmin`]): backups
//! ([`crate::backup`]) and scavenging ([`crate::scavenge`]), reached by the
//! server and the CLI without naming the backend.

use std::path::Path;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use strata_core::{
    BackupReport, Result, ScavengeOptions, ScavengeReport, ScavengeStatus, StoreAdmin,
};

use crate::store::LogStore;

#[async_trait]
impl StoreAdmin for LogStore {
    async fn backup(&self, dest: &Path) -> Result<BackupReport> {
        Ok(self.backup_to(dest).await?)
    }

    async fn scavenge(&self, options: ScavengeOptions) -> Result<ScavengeReport> {
        LogStore::scavenge(self, options).await
    }

    fn scavenge_status(&self) -> Option<ScavengeStatus> {
        let p = self.scavenge_progress();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Some(ScavengeStatus {
            running: p.running.load(Ordering::Relaxed),
            segments_total: load(&p.segments_total),
            segments_done: load(&p.segments_done),
            segments_rewritten: load(&p.segments_rewritten),
            events_removed: load(&p.events_removed),
            bytes_reclaimed: load(&p.bytes_reclaimed),
        })
    }
}
