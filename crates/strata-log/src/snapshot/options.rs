//! The tunables of a snapshot store, and the counters it reports.

use strata_core::{Error, Result};

use super::record::MAX_SNAPSHOT_STATE_BYTES;

/// Default for [`SnapshotStoreOptions::max_file_bytes`]: 64 MiB.
pub const DEFAULT_MAX_SNAPSHOT_FILE_BYTES: u64 = 64 << 20;
/// Smallest allowed [`SnapshotStoreOptions::max_file_bytes`].
pub const MIN_SNAPSHOT_FILE_BYTES_LIMIT: u64 = 4 << 10;
/// Largest allowed [`SnapshotStoreOptions::max_file_bytes`]: a file can
/// exceed it by one record, and must stay well below 4 GiB.
pub const MAX_SNAPSHOT_FILE_BYTES_LIMIT: u64 = 2 << 30;
/// Default for [`SnapshotStoreOptions::compact_min_reclaimable_bytes`]: 8 MiB.
pub const DEFAULT_COMPACT_MIN_RECLAIMABLE_BYTES: u64 = 8 << 20;
/// Default for [`SnapshotStoreOptions::compact_reclaimable_percent`].
pub const DEFAULT_COMPACT_RECLAIMABLE_PERCENT: u64 = 50;

const _: () =
    assert!(MAX_SNAPSHOT_FILE_BYTES_LIMIT + MAX_SNAPSHOT_STATE_BYTES as u64 * 2 < 1 << 32);

/// Tunables of a [`LogSnapshotStore`](super::LogSnapshotStore). The defaults
/// suit production; tests use small values to exercise file rolling and
/// compaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStoreOptions {
    /// A new file is started once the active one holds this many bytes
    /// (between [`MIN_SNAPSHOT_FILE_BYTES_LIMIT`] and [`MAX_SNAPSHOT_FILE_BYTES_LIMIT`]).
    pub max_file_bytes: u64,
    /// A file is compacted only if at least this many of its bytes are
    /// reclaimable (an entirely dead file is removed regardless).
    pub compact_min_reclaimable_bytes: u64,
    /// ... and only if at least this percentage (1..=100) of it is reclaimable.
    pub compact_reclaimable_percent: u64,
}

impl Default for SnapshotStoreOptions {
    fn default() -> Self {
        SnapshotStoreOptions {
            max_file_bytes: DEFAULT_MAX_SNAPSHOT_FILE_BYTES,
            compact_min_reclaimable_bytes: DEFAULT_COMPACT_MIN_RECLAIMABLE_BYTES,
            compact_reclaimable_percent: DEFAULT_COMPACT_RECLAIMABLE_PERCENT,
        }
    }
}

impl SnapshotStoreOptions {
    /// Refuses values outside their documented ranges.
    pub(super) fn validate(&self) -> Result<()> {
        if !(MIN_SNAPSHOT_FILE_BYTES_LIMIT..=MAX_SNAPSHOT_FILE_BYTES_LIMIT)
            .contains(&self.max_file_bytes)
        {
            return Err(Error::invalid(format!(
                "max_file_bytes must be between {MIN_SNAPSHOT_FILE_BYTES_LIMIT} and \
                 {MAX_SNAPSHOT_FILE_BYTES_LIMIT}, got {}",
                self.max_file_bytes
            )));
        }
        if !(1..=100).contains(&self.compact_reclaimable_percent) {
            return Err(Error::invalid(format!(
                "compact_reclaimable_percent must be between 1 and 100, got {}",
                self.compact_reclaimable_percent
            )));
        }
        Ok(())
    }
}

/// Counters describing a [`LogSnapshotStore`](super::LogSnapshotStore), for
/// monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStoreStats {
    /// Number of snapshot files.
    pub files: usize,
    /// Their total size in bytes (headers included).
    pub file_bytes: u64,
    /// Bytes of records the index points at (padding included).
    pub live_bytes: u64,
    /// Bytes of tombstones that compaction still has to keep.
    pub tombstone_bytes: u64,
    /// Streams with at least one snapshot.
    pub streams: usize,
    /// Snapshots in the index.
    pub snapshots: usize,
    /// Compactions (file rewrites or removals) since open.
    pub compactions: u64,
}
