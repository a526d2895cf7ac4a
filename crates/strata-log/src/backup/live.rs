//! Backing up an open store: [`LogStore::backup_to`] and the store's
//! [`StoreAdmin`] face. The log's view is taken from the shared state, so
//! the last segment is copied up to the readable tail, which the writer
//! has synced (in `Always` mode every published frame is; in the other
//! modes the store is flushed after the tail is read).

use std::path::Path;
use std::time::Instant;

use strata_core::{BackupReport, Error};

use super::error::BackupError;
use super::run::Run;
use super::source::LogView;
use crate::config::Durability;
use crate::store::LogStore;

impl LogStore {
    /// Backs up the store into `dest` while it stays in use: appends go on
    /// during the backup, which holds every event up to the head position
    /// of the moment its log view was taken (after the snapshot and
    /// checkpoint stores were copied). An earlier backup of this store in
    /// `dest` is brought up to date, copying only what changed.
    ///
    /// ```no_run
    /// # async fn demo(store: &strata_log::LogStore) -> Result<(), strata_log::backup::BackupError> {
    /// let report = store.backup_to("/backups/orders".as_ref()).await?;
    /// println!("up to position {}: {} bytes copied", report.position.0, report.bytes_copied);
    /// # Ok(()) }
    /// ```
    pub async fn backup_to(&self, dest: &Path) -> Result<BackupReport, BackupError> {
        let started = Instant::now();
        let (dir, dest) = (self.dir().to_path_buf(), dest.to_path_buf());
        let run = blocking(move || {
            let mut run = Run::begin(&dir, &dest, started)?;
            run.copy_side_stores()?;
            Ok(run)
        })
        .await?;
        let view = self.log_view().await?;
        blocking(move || {
            let mut run = run;
            run.copy_log(&view)?;
            run.finish(&view)
        })
        .await
    }

    /// The log as of now: every sealed segment, and the active one up to
    /// a tail that is durable.
    async fn log_view(&self) -> Result<LogView, BackupError> {
        let shared = self.shared();
        let view = {
            let state = shared.state.read();
            let active = state.active_segment;
            let segment = state.segments.get(&active).cloned().ok_or_else(|| {
                Error::Backend(format!("segment {active}, the active one, is not open"))
            })?;
            LogView {
                sealed: state.segments.range(..active).map(|(n, _)| *n).collect(),
                active,
                active_file: segment.file.clone(),
                active_path: segment.path.clone(),
                end: state.visible_end,
                position: state.head,
            }
        };
        // Outside `Always` mode readers may see frames not yet synced: a
        // flush sent after the tail was read syncs every one of them.
        if shared.config.durability != Durability::Always {
            self.flush().await?;
        }
        Ok(view)
    }
}

/// Runs blocking file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackupError> + Send + 'static,
) -> Result<T, BackupError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Store(Error::Backend(format!("backup task failed: {e}"))))?
}
