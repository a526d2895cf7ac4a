//! The durable snapshot store, kept in `DIR/snapshots/` of a data directory.
//!
//! # Design
//!
//! Snapshots live in numbered append-only files (`00000000.snap`, ...) of
//! checksummed records; `docs/log-format.md` ("Snapshot file") describes
//! every byte. A record is either a snapshot or a tombstone (written by
//! [`SnapshotStore::delete`]). Only the newest file, the *active* one, is
//! appended to; it is sealed and a new one started once it holds
//! [`SnapshotStoreOptions::max_file_bytes`].
//!
//! Memory holds only an index: per stream, the (version, file, offset,
//! length) of its newest [`MAX_SNAPSHOTS_PER_STREAM`] snapshots — about 24
//! bytes per snapshot plus about 100 bytes per stream. A load reads one
//! record from disk and verifies its checksums; a damaged record is reported
//! as [`Error::Corrupt`] with its file and offset and is never served.
//!
//! On open every file is scanned in order to rebuild the index. Only record
//! *headers* are checksummed on the way (each has its own CRC), so opening
//! does not read every state twice; states are verified when loaded. A torn
//! last record of the active file (a crash during an unacknowledged save) is
//! cut.
//!
//! [`SnapshotStore::erase`] goes further than a tombstone: it rewrites
//! every file holding any record of the stream without them (see the
//! `erase` module), so none of their bytes is left.
//!
//! A record is *dead* once the index no longer points at it (superseded
//! beyond the cap, replaced at the same version, or deleted). When a file's
//! reclaimable bytes pass both [`SnapshotStoreOptions::compact_min_reclaimable_bytes`]
//! and [`SnapshotStoreOptions::compact_reclaimable_percent`] of the file, the
//! file is rewritten with only its live records, under the same number, and
//! atomically (new file, fsync, rename, directory fsync). Rewriting in place
//! keeps the order of records across files, which is what makes replay on
//! open correct: a tombstone is kept by compaction as long as an older file
//! (which may still hold dead snapshots of its stream) exists.
//!
//! # Durability and errors
//!
//! `save` and `delete` return `Ok` only after the record is fsynced
//! (`fdatasync`): snapshots are an optimisation, but an `Ok` still means
//! durable. A failed write or fsync leaves the file's tail uncertain, so the
//! store then refuses further writes with [`Error::Poisoned`] (loads keep
//! working); reopening cuts whatever was torn. A failed compaction before its
//! rename changes nothing and is only logged.
//!
//! A damaged record *header* in the middle of a file (a valid record follows)
//! cannot be attributed to a stream: it might have been a tombstone, and
//! serving what it deleted would be wrong. So on open every snapshot stored
//! before such damage is dropped (older files are removed, the damaged file
//! rewritten) and an error is logged. Dropping snapshots is always safe: the
//! aggregate is replayed from its events instead.
//!
//! # Blocking
//!
//! `save`, `delete` and `load` run their file I/O on Tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]): an fsync can take milliseconds and a
//! triggered compaction longer, which must not stall the async workers. They
//! therefore need a Tokio runtime. [`LogSnapshotStore::open`] is synchronous:
//! it does blocking file I/O (it scans every file), so call it before the
//! runtime starts, or from an async task through
//! [`tokio::task::spawn_blocking`].
//!
//! Writers (save, delete, compaction) are serialised by one mutex; loads take
//! a second mutex only to look up the index and read the file without it.

mod compact;
mod dir;
mod erase;
pub(crate) mod fuzz;
mod index;
mod layout;
mod open;
mod options;
mod read;
mod record;
mod scan;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
pub use strata_core::snapshot::MAX_SNAPSHOTS_PER_STREAM;
use strata_core::{Error, Result, Snapshot, SnapshotStore, StreamId, Version};

use self::dir::SnapshotDir;
pub use self::layout::SNAPSHOTS_DIR;
pub use self::options::{
    SnapshotStoreOptions, SnapshotStoreStats, DEFAULT_COMPACT_MIN_RECLAIMABLE_BYTES,
    DEFAULT_COMPACT_RECLAIMABLE_PERCENT, DEFAULT_MAX_SNAPSHOT_FILE_BYTES,
    MAX_SNAPSHOT_FILE_BYTES_LIMIT, MIN_SNAPSHOT_FILE_BYTES_LIMIT,
};
use self::read::read_snapshot;
pub use self::record::{
    MAX_AGGREGATE_TYPE_BYTES, MAX_SNAPSHOT_STATE_BYTES, SNAPSHOT_FILE_HEADER_BYTES,
    SNAPSHOT_FILE_MAGIC, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_RECORD_ALIGN_BYTES,
    SNAPSHOT_RECORD_FIXED_BYTES,
};
pub(crate) use self::scan::torn_tail;
use crate::io::{FsStorage, Storage};

/// A durable [`SnapshotStore`] in `DIR/snapshots/`. See the module
/// documentation for the design and its guarantees.
///
/// ```no_run
/// # async fn demo() -> strata_core::Result<()> {
/// use strata_core::{SnapshotStore, StreamId};
/// use strata_log::snapshot::LogSnapshotStore;
///
/// // Opening scans the files: blocking I/O, kept off the async workers.
/// let store = tokio::task::spawn_blocking(|| LogSnapshotStore::open("./strata-data"))
///     .await
///     .map_err(|e| strata_core::Error::Backend(e.to_string()))??;
/// let stream = StreamId::new("account-42")?;
/// let newest = store.load(&stream, u64::MAX).await?;
/// # let _ = newest;
/// # Ok(()) }
/// ```
pub struct LogSnapshotStore {
    state: Arc<SnapshotDir>,
}

impl std::fmt::Debug for LogSnapshotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSnapshotStore")
            .field("dir", &self.state.dir)
            .finish_non_exhaustive()
    }
}

impl LogSnapshotStore {
    /// Opens (or creates) the snapshot store of data directory `dir`, in
    /// `dir/snapshots/`, on the real file system with default options.
    ///
    /// This does blocking file I/O: it scans every snapshot file, and may
    /// cut a torn tail or compact. From async code, call it through
    /// [`tokio::task::spawn_blocking`], or before the runtime starts.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_storage(dir, Arc::new(FsStorage))
    }

    /// Like [`LogSnapshotStore::open`], on the given storage (tests inject
    /// faults). Blocking, like `open`.
    pub fn open_with_storage(dir: impl AsRef<Path>, storage: Arc<dyn Storage>) -> Result<Self> {
        Self::open_with_options(dir, storage, SnapshotStoreOptions::default())
    }

    /// Like [`LogSnapshotStore::open_with_storage`], with explicit options.
    /// Blocking, like `open`.
    pub fn open_with_options(
        dir: impl AsRef<Path>,
        storage: Arc<dyn Storage>,
        options: SnapshotStoreOptions,
    ) -> Result<Self> {
        options.validate()?;
        let dir: PathBuf = dir.as_ref().join(SNAPSHOTS_DIR);
        SnapshotDir::open(dir, storage, options).map(|state| LogSnapshotStore {
            state: Arc::new(state),
        })
    }

    /// The directory the files are in (`DIR/snapshots`).
    pub fn dir(&self) -> &Path {
        &self.state.dir
    }

    /// Current counters.
    pub fn stats(&self) -> SnapshotStoreStats {
        let s = self.state.index.lock();
        SnapshotStoreStats {
            files: s.files.len(),
            file_bytes: s.files.values().map(|f| f.len).sum(),
            live_bytes: s.files.values().map(|f| f.live_bytes).sum(),
            tombstone_bytes: s.files.values().map(|f| f.tombstone_bytes).sum(),
            streams: s.streams.len(),
            snapshots: s.snapshots,
            compactions: self.state.compactions.load(Ordering::Relaxed),
        }
    }

    /// Rewrites every file that holds any reclaimable bytes, whatever the
    /// thresholds (oldest first, so tombstones that only guard older files
    /// can go too). Compaction otherwise runs by itself after writes.
    pub async fn compact(&self) -> Result<()> {
        let state = Arc::clone(&self.state);
        blocking(move || state.compact_all()).await
    }
}

#[async_trait]
impl SnapshotStore for LogSnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<()> {
        let state = Arc::clone(&self.state);
        blocking(move || state.save(snapshot)).await
    }

    async fn load(&self, stream: &StreamId, max_version: Version) -> Result<Option<Snapshot>> {
        let Some(found) = self.state.locate(stream, max_version) else {
            return Ok(None);
        };
        let stream = stream.clone();
        blocking(move || read_snapshot(found, stream).map(Some)).await
    }

    async fn delete(&self, stream: &StreamId) -> Result<()> {
        let state = Arc::clone(&self.state);
        let stream = stream.clone();
        blocking(move || state.delete(&stream)).await
    }

    /// Deletes the stream's snapshots (a tombstone), then rewrites every
    /// file holding any record of the stream without it, oldest first, each
    /// atomically; when it returns no byte of them is left in
    /// `DIR/snapshots/` (blocks of the replaced files the file system has
    /// not reused yet are beyond it). Costs a rewrite of each such file.
    async fn erase(&self, stream: &StreamId) -> Result<()> {
        let state = Arc::clone(&self.state);
        let stream = stream.clone();
        blocking(move || state.erase(&stream).map(drop)).await
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("snapshot store task failed: {e}")))?
}
