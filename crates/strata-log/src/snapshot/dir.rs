//! The open snapshot directory: its files and index, the writer's state,
//! and the creation of a new file.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use parking_lot::Mutex;
use strata_core::{Error, Result};

use super::index::{FileInfo, SnapshotIndex};
use super::layout::{file_name, tmp_name};
use super::options::SnapshotStoreOptions;
use super::record::{encode_file_header, SNAPSHOT_FILE_HEADER_BYTES};
use crate::io::{Storage, StorageFile};

/// Writer-side state, behind the writer mutex.
pub(super) struct Writer {
    /// The file appended to (the highest number).
    pub(super) active: u32,
    /// Set after a write or fsync failed: the tail is uncertain.
    pub(super) poisoned: Option<String>,
    /// Bytes appended since open.
    pub(super) appended_bytes: u64,
    /// After a failed compaction, none is tried until this many bytes were appended.
    pub(super) compact_retry_at_bytes: u64,
}

impl Writer {
    /// A writer that has appended nothing yet.
    pub(super) fn new() -> Self {
        Writer {
            active: 0,
            poisoned: None,
            appended_bytes: 0,
            compact_retry_at_bytes: 0,
        }
    }

    /// Refuses to write once poisoned.
    pub(super) fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses every later write: the files' state on disk is uncertain.
    pub(super) fn poison(&mut self, reason: String) {
        tracing::error!(%reason, "snapshot store refuses writes until reopened");
        self.poisoned = Some(reason);
    }
}

/// An open snapshot directory (`DIR/snapshots`). Writers (save, delete,
/// compaction) are serialised by the writer mutex; loads take the index
/// mutex only to look up where a snapshot is, and read the file without it.
pub(super) struct SnapshotDir {
    pub(super) dir: PathBuf,
    pub(super) storage: Arc<dyn Storage>,
    pub(super) options: SnapshotStoreOptions,
    pub(super) writer: Mutex<Writer>,
    pub(super) index: Mutex<SnapshotIndex>,
    pub(super) compactions: AtomicU64,
    /// Held for as long as the directory is open.
    pub(super) _lock: File,
}

impl SnapshotDir {
    /// The path of data file `number`.
    pub(super) fn path_of(&self, number: u32) -> PathBuf {
        self.dir.join(file_name(number))
    }

    /// Creates file `number` atomically, holding only a header.
    pub(super) fn create_file(&self, number: u32) -> Result<FileInfo> {
        let path = self.path_of(number);
        let tmp = self.dir.join(tmp_name(number));
        let result = (|| -> io::Result<Arc<dyn StorageFile>> {
            let h = self.storage.open(&tmp, true)?;
            h.set_len(0)?;
            h.write_all_at(&encode_file_header(number), 0)?;
            h.sync_data()?;
            self.storage.rename(&tmp, &path)?;
            self.storage.sync_dir(&self.dir)?;
            Ok(h)
        })();
        match result {
            Ok(handle) => {
                tracing::debug!(file = %path.display(), "started a snapshot file");
                Ok(FileInfo {
                    path,
                    handle,
                    len: SNAPSHOT_FILE_HEADER_BYTES as u64,
                    live_bytes: 0,
                    live_count: 0,
                    tombstone_bytes: 0,
                })
            }
            Err(e) => {
                let _ = self.storage.remove(&tmp);
                Err(Error::io(format!("creating {}", path.display()), e))
            }
        }
    }

    /// Makes a rename or removal in the directory durable; a failure
    /// poisons the store, since what later writes rely on may be lost.
    pub(super) fn sync_dir_or_poison(&self, w: &mut Writer) -> Result<()> {
        if let Err(e) = self.storage.sync_dir(&self.dir) {
            let err = Error::io(format!("syncing {}", self.dir.display()), e);
            w.poison(err.to_string());
            return Err(err);
        }
        Ok(())
    }
}
