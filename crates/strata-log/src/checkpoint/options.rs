//! The tunables and limits of a checkpoint store, and the counters it
//! reports.

use strata_core::{Error, Result};

/// The most distinct checkpoint names the store holds.
pub const MAX_CHECKPOINT_NAMES: usize = 65_536;
/// Default for [`CheckpointStoreOptions::compact_at_bytes`]: 1 MiB.
pub const DEFAULT_CHECKPOINT_COMPACT_AT_BYTES: u64 = 1 << 20;
/// Smallest allowed [`CheckpointStoreOptions::compact_at_bytes`].
pub const MIN_CHECKPOINT_COMPACT_AT_BYTES: u64 = 4 << 10;
/// Largest allowed [`CheckpointStoreOptions::compact_at_bytes`].
pub const MAX_CHECKPOINT_COMPACT_AT_BYTES: u64 = 1 << 30;
/// The file is compacted only when it is at least this many times the size
/// the live checkpoints need, so many names do not cause a rewrite per save.
pub const CHECKPOINT_COMPACT_GROWTH_FACTOR: u64 = 2;

/// Tunables of a [`LogCheckpointStore`](super::LogCheckpointStore).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStoreOptions {
    /// The file is compacted once it reaches this many bytes (between
    /// [`MIN_CHECKPOINT_COMPACT_AT_BYTES`] and [`MAX_CHECKPOINT_COMPACT_AT_BYTES`]).
    pub compact_at_bytes: u64,
}

impl Default for CheckpointStoreOptions {
    fn default() -> Self {
        CheckpointStoreOptions {
            compact_at_bytes: DEFAULT_CHECKPOINT_COMPACT_AT_BYTES,
        }
    }
}

impl CheckpointStoreOptions {
    /// Refuses values outside their documented ranges.
    pub(super) fn validate(&self) -> Result<()> {
        if !(MIN_CHECKPOINT_COMPACT_AT_BYTES..=MAX_CHECKPOINT_COMPACT_AT_BYTES)
            .contains(&self.compact_at_bytes)
        {
            return Err(Error::invalid(format!(
                "compact_at_bytes must be between {MIN_CHECKPOINT_COMPACT_AT_BYTES} and \
                 {MAX_CHECKPOINT_COMPACT_AT_BYTES}, got {}",
                self.compact_at_bytes
            )));
        }
        Ok(())
    }
}

/// Counters describing a [`LogCheckpointStore`](super::LogCheckpointStore),
/// for monitoring and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStoreStats {
    /// Checkpoints held.
    pub names: usize,
    /// Size of the file in bytes.
    pub file_bytes: u64,
    /// Bytes the live checkpoints need (header included).
    pub live_bytes: u64,
    /// Compactions since open.
    pub compactions: u64,
}
