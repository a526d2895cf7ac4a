//! The stream index: every stream's head and the position of each of its
//! versions, kept in memory ([`StreamTable`]) and checkpointed to
//! `streams.ckpt` ([`checkpoint`]); and each stream's current metadata,
//! kept in memory only (rebuilt on open from the metadata streams, see
//! `recovery::metadata`).

#![deny(clippy::indexing_slicing)]

pub mod checkpoint;
mod table;

pub use checkpoint::{CheckpointEncoder, STREAM_CHECKPOINT_FILE};
pub use table::{StreamTable, STREAM_SHARDS};

use strata_core::append_rules::StreamHead;
use strata_core::metadata::{erased_metadata_stream, metadata_target};
use strata_core::{Position, StreamId, StreamMetadata};
use tracing::warn;

use crate::format::FrameKind;

/// One stream's entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Version, deletion state and last position.
    pub head: StreamHead,
    /// `positions[k]` is the position of version `k + 1`.
    pub positions: Vec<u64>,
    /// Erased (and so tombstoned too): `$all` no longer shows its events,
    /// and a scavenge removes their data.
    pub erased: bool,
}

/// What a delete frame does to its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteKind {
    /// A soft delete: stream reads start after it; appends go on.
    Soft,
    /// A tombstone: nothing is read from or written to the stream again.
    Tombstone,
    /// An erasure: a tombstone that also hides the events from `$all` and
    /// lets a scavenge remove their data.
    Erase,
}

impl DeleteKind {
    /// The kind of frame that records it.
    pub fn frame_kind(self) -> FrameKind {
        match self {
            DeleteKind::Soft => FrameKind::Delete,
            DeleteKind::Tombstone => FrameKind::Tombstone,
            DeleteKind::Erase => FrameKind::Erase,
        }
    }

    /// The deletion a frame of `kind` records, if it records one.
    pub fn of_frame(kind: FrameKind) -> Option<Self> {
        match kind {
            FrameKind::Delete => Some(DeleteKind::Soft),
            FrameKind::Tombstone => Some(DeleteKind::Tombstone),
            FrameKind::Erase => Some(DeleteKind::Erase),
            FrameKind::Append | FrameKind::Gap => None,
        }
    }
}

/// All streams.
#[derive(Debug, Default)]
pub struct StreamIndex {
    /// By name.
    pub streams: StreamTable,
    /// Each stream's current metadata (the latest event of its metadata
    /// stream `$$NAME`), by the stream it applies to, which need not exist.
    /// Not part of the checkpoint.
    pub metadata: crate::index::FastMap<StreamId, StreamMetadata>,
    /// How many streams are erased (reads of `$all` check each stream they
    /// meet only when some is).
    pub erased: usize,
}

impl StreamIndex {
    /// Records an event at `version` of `stream`.
    pub fn add_event(&mut self, stream: &StreamId, version: u64, position: u64) {
        self.add_events(stream, version, std::iter::once(position));
    }

    /// Records the events of `stream` from `first_version` on, one version
    /// each, at `positions`: one lookup of the stream for all of them.
    pub fn add_events(
        &mut self,
        stream: &StreamId,
        first_version: u64,
        positions: impl ExactSizeIterator<Item = u64>,
    ) {
        let n = positions.len() as u64;
        if n == 0 {
            return;
        }
        let e = match self.streams.get_mut(stream.as_str()) {
            Some(e) => e,
            None => self.streams.entry(stream.clone()).or_default(),
        };
        debug_assert_eq!(
            first_version,
            e.head.version + 1,
            "versions must be contiguous"
        );
        e.positions.extend(positions);
        e.head.version = first_version + n - 1;
        e.head.last_position = e.positions.last().map(|p| Position(*p));
    }

    /// Records the versions of `stream` after its head, up to `through`, as
    /// lost in damaged bytes at `position` (a store opened read-only over
    /// damage): a read of them reports the damage.
    pub fn add_lost(&mut self, stream: &StreamId, through: u64, position: u64) {
        let e = self.streams.entry(stream.clone()).or_default();
        while e.head.version < through {
            e.positions.push(position);
            e.head.version += 1;
        }
    }

    /// Records a soft delete, tombstone or erasure.
    pub fn delete(&mut self, stream: &StreamId, deleted_through: u64, kind: DeleteKind) {
        let e = self.streams.entry(stream.clone()).or_default();
        match kind {
            // Never lowered: replaying a delete a checkpoint already
            // holds (see `checkpoint`) must not undo a later one.
            DeleteKind::Soft => {
                e.head.deleted_through = e.head.deleted_through.max(deleted_through)
            }
            DeleteKind::Tombstone => e.head.tombstoned = true,
            DeleteKind::Erase => {
                e.head.tombstoned = true;
                if !e.erased {
                    e.erased = true;
                    self.erased += 1;
                }
            }
        }
    }

    /// Records what a delete frame of `stream` does: [`delete`](Self::delete),
    /// and for an erasure the same to the metadata stream it erases with
    /// it ([`erased_metadata_stream`]), whose settings then govern nothing.
    /// The frame does not carry that stream's version: replayed without a
    /// checkpoint after a scavenge removed its events, its head may stop
    /// short of it (nothing can be written to it again either way).
    pub fn record_delete(&mut self, stream: &StreamId, deleted_through: u64, kind: DeleteKind) {
        self.delete(stream, deleted_through, kind);
        if kind != DeleteKind::Erase {
            return;
        }
        if let Some(meta) = erased_metadata_stream(stream) {
            self.delete(&meta, 0, DeleteKind::Erase);
            self.metadata.remove(stream);
        }
    }

    /// Keeps the settings an event of metadata stream `stream` (`$$NAME`)
    /// holds, as the metadata of `NAME`: the latest event of a metadata
    /// stream is its stream's metadata. Data that is not valid metadata
    /// (never written through the store's checks) leaves `NAME` with none.
    /// Events of other streams are ignored.
    pub fn note_metadata(&mut self, stream: &str, data: &[u8]) {
        let Some(target) = metadata_target(stream) else {
            return;
        };
        let Ok(target) = StreamId::any(target) else {
            return;
        };
        match StreamMetadata::from_json(data) {
            Ok(m) => {
                self.metadata.insert(target, m);
            }
            Err(e) => {
                warn!(stream, reason = %e, "a metadata stream's latest event is not valid stream metadata; the stream has none");
                self.metadata.remove(target.as_str());
            }
        }
    }

    /// Sets the metadata of `target` (checked already).
    pub fn set_metadata(&mut self, target: StreamId, metadata: StreamMetadata) {
        self.metadata.insert(target, metadata);
    }

    /// The newest position any stream's head holds.
    pub fn newest_position(&self) -> Option<u64> {
        self.streams
            .values()
            .filter_map(|e| e.head.last_position)
            .map(|p| p.0)
            .max()
    }
}
