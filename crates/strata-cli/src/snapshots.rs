//! The snapshot store kept with a store, for what erases a stream through
//! the command line (`strata erase --store`) or a server (`strata serve`):
//! its snapshots must go with it.

use std::sync::Arc;

use strata_core::{Error, SnapshotStore};
use strata_log::snapshot::{LogSnapshotStore, SNAPSHOTS_DIR};
use strata_stores::OpenStore;

/// The snapshot store kept with `open`: the log store's `DIR/snapshots/`
/// when it exists (none is created), the PostgreSQL schema's snapshots
/// table; none for the memory store.
pub async fn kept_with(open: &OpenStore) -> Result<Option<Arc<dyn SnapshotStore>>, Error> {
    if let Some(pg) = open.postgres_store() {
        return Ok(Some(Arc::new(pg.snapshots())));
    }
    let Some(log) = open.log_store() else {
        return Ok(None);
    };
    let dir = log.dir().to_path_buf();
    if !dir.join(SNAPSHOTS_DIR).is_dir() {
        return Ok(None);
    }
    // Opening scans every file: blocking I/O, off the async workers.
    let store = tokio::task::spawn_blocking(move || LogSnapshotStore::open(dir))
        .await
        .map_err(|e| Error::Backend(format!("opening the snapshot store failed: {e}")))??;
    Ok(Some(Arc::new(store)))
}
