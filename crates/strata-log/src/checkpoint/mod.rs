//! The durable checkpoint store, kept in `DIR/checkpoints/` of a data
//! directory.
//!
//! # Design
//!
//! Few names, frequent saves (a projection runner saves every N events). All
//! checkpoints live in memory; disk holds one append-only file,
//! `checkpoints/checkpoints.log`, of small checksummed records: "name is at
//! position P" or "name was reset". `docs/log-format.md` ("Checkpoint file")
//! describes every byte. On open the file is replayed; a torn last record
//! (a crash during an unacknowledged save) is cut.
//!
//! Once the file reaches [`CheckpointStoreOptions::compact_at_bytes`] and is
//! at least [`CHECKPOINT_COMPACT_GROWTH_FACTOR`] times what the live
//! checkpoints need, it is rewritten with one record per name, atomically
//! (new file, fsync, rename, directory fsync).
//!
//! # Durability and errors
//!
//! `save` and `reset` return `Ok` only after the record is fsynced
//! (`fdatasync`). A failed write or fsync poisons the store: further writes
//! return [`Error::Poisoned`] until it is reopened (loads keep working).
//!
//! A damaged record *followed by valid ones* is not a torn write, and it
//! cannot be attributed to a name: skipping it could move a checkpoint
//! forward past a reset and make a projection skip events. Opening then
//! fails with [`Error::Corrupt`] naming the file and offset; restore the file,
//! or delete it to restart every projection from the beginning.
//!
//! # Blocking
//!
//! `save` and `reset` run on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) because of their fsync, so they need a
//! Tokio runtime; `load` only reads memory. [`LogCheckpointStore::open`] is
//! synchronous: it does blocking file I/O (it reads and replays the file,
//! and may cut a torn tail or compact), so call it before the runtime
//! starts, or from an async task through [`tokio::task::spawn_blocking`].

mod compact;
mod file;
pub(crate) mod fuzz;
mod layout;
mod open;
mod options;
mod record;
mod replay;
mod write;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use strata_core::{CheckpointStore, Error, Position, Result};

use self::file::CheckpointFile;
pub use self::layout::{CHECKPOINTS_DIR, CHECKPOINT_FILE_NAME};
pub use self::options::{
    CheckpointStoreOptions, CheckpointStoreStats, CHECKPOINT_COMPACT_GROWTH_FACTOR,
    DEFAULT_CHECKPOINT_COMPACT_AT_BYTES, MAX_CHECKPOINT_COMPACT_AT_BYTES, MAX_CHECKPOINT_NAMES,
    MIN_CHECKPOINT_COMPACT_AT_BYTES,
};
use self::record::live_bytes_of;
pub use self::record::{
    CHECKPOINT_FILE_HEADER_BYTES, CHECKPOINT_FILE_MAGIC, CHECKPOINT_FORMAT_VERSION,
    CHECKPOINT_RECORD_ALIGN_BYTES, CHECKPOINT_RECORD_FIXED_BYTES, MAX_CHECKPOINT_NAME_BYTES,
};
pub(crate) use self::replay::valid_end;
use crate::io::{FsStorage, Storage};

/// A durable [`CheckpointStore`] in `DIR/checkpoints/`. See the module
/// documentation for the design and its guarantees.
///
/// ```no_run
/// # async fn demo() -> strata_core::Result<()> {
/// use strata_core::{CheckpointStore, Position};
/// use strata_log::checkpoint::LogCheckpointStore;
///
/// // Opening reads the file: blocking I/O, kept off the async workers.
/// let store = tokio::task::spawn_blocking(|| LogCheckpointStore::open("./strata-data"))
///     .await
///     .map_err(|e| strata_core::Error::Backend(e.to_string()))??;
/// store.save("balances", Position(42)).await?;
/// assert_eq!(store.load("balances").await?, Some(Position(42)));
/// # Ok(()) }
/// ```
pub struct LogCheckpointStore {
    file: Arc<CheckpointFile>,
}

impl std::fmt::Debug for LogCheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogCheckpointStore")
            .field("path", &self.file.path)
            .finish_non_exhaustive()
    }
}

impl LogCheckpointStore {
    /// Opens (or creates) the checkpoint store of data directory `dir`, in
    /// `dir/checkpoints/`, on the real file system with default options.
    ///
    /// This does blocking file I/O: it reads and replays the checkpoint
    /// file, and may cut a torn tail or compact. From async code, call it
    /// through [`tokio::task::spawn_blocking`], or before the runtime starts.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_storage(dir, Arc::new(FsStorage))
    }

    /// Like [`LogCheckpointStore::open`], on the given storage (tests inject
    /// faults). Blocking, like `open`.
    pub fn open_with_storage(dir: impl AsRef<Path>, storage: Arc<dyn Storage>) -> Result<Self> {
        Self::open_with_options(dir, storage, CheckpointStoreOptions::default())
    }

    /// Like [`LogCheckpointStore::open_with_storage`], with explicit options.
    /// Blocking, like `open`.
    pub fn open_with_options(
        dir: impl AsRef<Path>,
        storage: Arc<dyn Storage>,
        options: CheckpointStoreOptions,
    ) -> Result<Self> {
        options.validate()?;
        let dir = dir.as_ref().join(CHECKPOINTS_DIR);
        CheckpointFile::open(&dir, storage, options).map(|file| LogCheckpointStore {
            file: Arc::new(file),
        })
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Current counters.
    pub fn stats(&self) -> CheckpointStoreStats {
        let (names, live_bytes) = {
            let m = self.file.map.lock();
            (m.len(), live_bytes_of(&m))
        };
        CheckpointStoreStats {
            names,
            file_bytes: self.file.file_bytes.load(Ordering::Relaxed),
            live_bytes,
            compactions: self.file.compactions.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl CheckpointStore for LogCheckpointStore {
    async fn load(&self, name: &str) -> Result<Option<Position>> {
        Ok(self.file.map.lock().get(name).copied())
    }

    async fn save(&self, name: &str, position: Position) -> Result<()> {
        validate_name(name)?;
        let file = Arc::clone(&self.file);
        let name = name.to_owned();
        blocking(move || file.write(&name, Some(position))).await
    }

    async fn reset(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let file = Arc::clone(&self.file);
        let name = name.to_owned();
        blocking(move || file.write(&name, None)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("checkpoint store task failed: {e}")))?
}

fn validate_name(name: &str) -> Result<()> {
    if name.len() > MAX_CHECKPOINT_NAME_BYTES {
        return Err(Error::invalid(format!(
            "checkpoint name is {} bytes, at most {MAX_CHECKPOINT_NAME_BYTES} are allowed",
            name.len()
        )));
    }
    Ok(())
}
