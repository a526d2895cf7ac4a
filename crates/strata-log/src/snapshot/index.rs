//! The in-memory index of a snapshot store: per stream, where its newest
//! snapshots are; per file, how many of its bytes are still live.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use strata_core::snapshot::MAX_SNAPSHOTS_PER_STREAM;
use strata_core::{StreamId, Version};

use super::layout::parse_stream;
use super::record::{align_u64, SNAPSHOT_FILE_HEADER_BYTES};
use crate::io::StorageFile;

/// Where one snapshot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) version: Version,
    pub(super) offset: u64,
    pub(super) file: u32,
    /// Record length without padding.
    pub(super) len: u32,
}

impl Entry {
    pub(super) fn padded(&self) -> u64 {
        align_u64(self.len as u64)
    }
}

/// One snapshot file.
pub(super) struct FileInfo {
    pub(super) path: PathBuf,
    pub(super) handle: Arc<dyn StorageFile>,
    /// Logical length: where the next record would go.
    pub(super) len: u64,
    /// Padded bytes of the records the index points at.
    pub(super) live_bytes: u64,
    /// How many index entries point into this file.
    pub(super) live_count: usize,
    /// Padded bytes of tombstones (reclaimable only in the oldest file).
    pub(super) tombstone_bytes: u64,
}

impl FileInfo {
    pub(super) fn reclaimable(&self, is_oldest: bool) -> u64 {
        let pinned = if is_oldest { 0 } else { self.tombstone_bytes };
        self.len
            .saturating_sub(SNAPSHOT_FILE_HEADER_BYTES as u64)
            .saturating_sub(self.live_bytes)
            .saturating_sub(pinned)
    }
}

/// What loads and writers share: where every live snapshot is, and the files.
#[derive(Default)]
pub(super) struct SnapshotIndex {
    /// Per stream, its snapshots sorted by version (ascending), at most
    /// [`MAX_SNAPSHOTS_PER_STREAM`].
    pub(super) streams: HashMap<StreamId, Vec<Entry>>,
    /// The open files, by number.
    pub(super) files: BTreeMap<u32, FileInfo>,
    /// Snapshots in `streams`, all streams together.
    pub(super) snapshots: usize,
}

impl SnapshotIndex {
    /// Whether a snapshot at `version` would be kept by the cap.
    pub(super) fn would_keep(&self, stream: &str, version: Version) -> bool {
        match self.streams.get(stream) {
            None => true,
            Some(list) => {
                list.len() < MAX_SNAPSHOTS_PER_STREAM
                    || list.first().is_some_and(|e| version >= e.version)
            }
        }
    }

    fn mark_live(files: &mut BTreeMap<u32, FileInfo>, e: &Entry) {
        if let Some(f) = files.get_mut(&e.file) {
            f.live_bytes += e.padded();
            f.live_count += 1;
        }
    }

    fn mark_dead(files: &mut BTreeMap<u32, FileInfo>, e: &Entry) {
        if let Some(f) = files.get_mut(&e.file) {
            f.live_bytes = f.live_bytes.saturating_sub(e.padded());
            f.live_count = f.live_count.saturating_sub(1);
        }
    }

    /// Adds a snapshot, replacing one at the same version and evicting the
    /// oldest beyond the cap (exactly what `MemorySnapshotStore` does).
    pub(super) fn insert(&mut self, stream: &str, e: Entry) {
        let SnapshotIndex {
            streams,
            files,
            snapshots,
        } = self;
        let list = match streams.get_mut(stream) {
            Some(list) => list,
            None => match parse_stream(stream) {
                Ok(id) => streams.entry(id).or_default(),
                Err(error) => {
                    tracing::warn!(stream, %error, "skipping a snapshot record with an invalid stream name");
                    return;
                }
            },
        };
        match list.binary_search_by_key(&e.version, |x| x.version) {
            Ok(i) => {
                let old = std::mem::replace(&mut list[i], e);
                Self::mark_dead(files, &old);
                Self::mark_live(files, &e);
            }
            Err(i) => {
                if list.len() >= MAX_SNAPSHOTS_PER_STREAM && i == 0 {
                    return; // older than everything kept: evicted at once
                }
                list.insert(i, e);
                Self::mark_live(files, &e);
                *snapshots += 1;
                if list.len() > MAX_SNAPSHOTS_PER_STREAM {
                    let old = list.remove(0);
                    Self::mark_dead(files, &old);
                    *snapshots -= 1;
                }
            }
        }
        debug_assert!(list.len() <= MAX_SNAPSHOTS_PER_STREAM);
        debug_assert!(list.windows(2).all(|w| w[0].version < w[1].version));
    }

    /// Drops every snapshot of `stream`.
    pub(super) fn remove_stream(&mut self, stream: &str) {
        if let Some(list) = self.streams.remove(stream) {
            for e in &list {
                Self::mark_dead(&mut self.files, e);
            }
            self.snapshots -= list.len();
        }
    }

    /// Keeps only the entries `keep` accepts.
    pub(super) fn retain_entries(&mut self, keep: impl Fn(&Entry) -> bool) {
        let SnapshotIndex {
            streams,
            files,
            snapshots,
        } = self;
        streams.retain(|_, list| {
            list.retain(|e| {
                let k = keep(e);
                if !k {
                    Self::mark_dead(files, e);
                    *snapshots -= 1;
                }
                k
            });
            !list.is_empty()
        });
    }

    /// The index key of the live snapshot at exactly (file, offset), if the
    /// record there is live.
    pub(super) fn live_key(
        &self,
        stream: &str,
        version: Version,
        file: u32,
        offset: u64,
    ) -> Option<StreamId> {
        let (key, list) = self.streams.get_key_value(stream)?;
        list.iter()
            .any(|e| e.version == version && e.file == file && e.offset == offset)
            .then(|| key.clone())
    }
}
