//! The open checkpoint file: the checkpoints it holds and the writer's
//! state.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_core::{Error, Position};

use super::options::CheckpointStoreOptions;
use crate::io::{Storage, StorageFile};

/// Writer-side state, behind the writer mutex.
pub(super) struct Writer {
    pub(super) file: Arc<dyn StorageFile>,
    /// Where the next record goes.
    pub(super) len: u64,
    /// Set after a write or fsync failed.
    pub(super) poisoned: Option<String>,
    /// After a failed compaction, none is tried before the file reaches this.
    pub(super) compact_retry_at_bytes: u64,
}

impl Writer {
    /// Refuses every later write: the file's state on disk is uncertain.
    pub(super) fn poison(&mut self, err: &Error) {
        tracing::error!(error = %err, "checkpoint store refuses writes until reopened");
        self.poisoned = Some(err.to_string());
    }
}

/// The open checkpoint file and the checkpoints it holds. Saves and resets
/// are serialised by the writer mutex; loads only take the map's.
pub(super) struct CheckpointFile {
    pub(super) dir: PathBuf,
    pub(super) path: PathBuf,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) options: CheckpointStoreOptions,
    pub(super) writer: Mutex<Writer>,
    pub(super) map: Mutex<HashMap<String, Position>>,
    pub(super) file_bytes: AtomicU64,
    pub(super) compactions: AtomicU64,
    /// Held for as long as the file is open.
    pub(super) _lock: File,
}
