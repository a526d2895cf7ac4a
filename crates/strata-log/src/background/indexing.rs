//! Index files of sealed segments: building an entry from a record, writing
//! the file, and rebuilding a damaged one from its segment.

use std::path::Path;
use std::sync::Arc;

use strata_core::{Error, Result};

use crate::format::record_offsets;
use crate::format::{position_of, FrameKind, RecordView, FRAME_HEADER_BYTES};
use crate::index::{key_hash, ActiveIndex, IndexEntry, SealedIndex};
use crate::io::Storage;
use crate::segment::{
    index_file_name, scan_frames, FrameVisitor, ScanEnd, Segment, FIRST_FRAME_OFFSET,
};
use crate::state::{location, OpenStore};

/// The index entry of a recorded event.
pub(crate) fn index_entry(view: &RecordView<'_>, position: u64) -> IndexEntry {
    IndexEntry {
        id: view.id().0.as_u128(),
        position,
        type_hash: key_hash(view.event_type),
        category_hash: key_hash(strata_core::stream_id::category_of(view.stream)),
        correlation_hash: view.correlation_id().map(key_hash),
        // A record does not say who chose its id: arrival order decides.
        store_made: true,
    }
}

/// Writes the index file of sealed segment `n` and opens it.
pub(crate) fn write_sealed_index(
    storage: &dyn Storage,
    idx_dir: &Path,
    n: u32,
    idx: &ActiveIndex,
) -> Result<SealedIndex> {
    let path = idx_dir.join(index_file_name(n));
    crate::io::write_file_atomic(storage, &path, &idx.freeze().encode(n))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    let file = storage
        .open(&path, false)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    let corrupt = |reason: String| Error::Corrupt {
        location: path.display().to_string(),
        reason,
    };
    let sealed = SealedIndex::open(file, n).map_err(|e| corrupt(e.to_string()))?;
    // Loaded here, off every lock, so the first id lookup finds it in memory.
    sealed.id_filter().map_err(|e| corrupt(e.to_string()))?;
    Ok(sealed)
}

impl OpenStore {
    /// Rebuilds sealed segment `n`'s index file from the segment, one
    /// repair at a time; a caller that waited while another rebuilt the
    /// same index finds it done.
    pub(crate) fn repair_index(&self, n: u32) -> Result<()> {
        let damaged = self.state.read().sealed.get(&n).map(Arc::as_ptr);
        let _one_at_a_time = self.repairing.lock();
        let now = self.state.read().sealed.get(&n).map(Arc::as_ptr);
        if now != damaged {
            return Ok(());
        }
        let seg = self
            .state
            .read()
            .segments
            .get(&n)
            .cloned()
            .ok_or_else(|| Error::Backend(format!("no segment {n} to reindex")))?;
        let idx = index_segment(&seg, self.config.max_segment_bytes)?;
        let sealed = write_sealed_index(
            self.config.storage.as_ref(),
            &self.config.dir.join("index"),
            n,
            &idx,
        )?;
        self.state.write().sealed.insert(n, Arc::new(sealed));
        Ok(())
    }
}

/// Walks every frame of sealed segment `seg` with `f`; a frame that breaks
/// the chain, or that `f` cannot decode, is `Corrupt` naming the file.
pub(crate) fn walk_sealed(
    seg: &Segment,
    max_segment_bytes: u64,
    f: impl FrameVisitor,
) -> Result<()> {
    let len = seg
        .file
        .len()
        .map_err(|e| Error::io(format!("sizing {}", seg.path.display()), e))?;
    walk_frames(seg, len, max_segment_bytes, f)
}

/// Walks the frames of segment `seg` up to offset `limit` (its length, or
/// the visible end of the active segment) with `f`; a frame that breaks
/// the chain, or that `f` cannot decode, is `Corrupt` naming the file.
pub(crate) fn walk_frames(
    seg: &Segment,
    limit: u64,
    max_segment_bytes: u64,
    f: impl FrameVisitor,
) -> Result<()> {
    let end = scan_frames(
        seg.file.as_ref(),
        seg.check,
        FIRST_FRAME_OFFSET,
        limit,
        max_segment_bytes,
        f,
    )
    .map_err(|e| Error::Corrupt {
        location: seg.path.display().to_string(),
        reason: e.to_string(),
    })?;
    if let ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason } = end {
        return Err(Error::Corrupt {
            location: location(&seg.path, at),
            reason,
        });
    }
    Ok(())
}

/// Builds the index of segment `seg` from its frames (removed records and
/// gap frames hold nothing to index).
pub(crate) fn index_segment(seg: &Segment, max_segment_bytes: u64) -> Result<ActiveIndex> {
    let n = seg.number;
    let mut idx = ActiveIndex::default();
    walk_sealed(seg, max_segment_bytes, |offset, kind, body, _, _| {
        idx.add_frame(offset);
        if kind == FrameKind::Append {
            let body_start = offset + FRAME_HEADER_BYTES as u64;
            for (rec_off, rel) in record_offsets(body, body_start)? {
                let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                if !view.is_removed() {
                    idx.add(&index_entry(&view, position_of(n, rec_off).0));
                }
            }
        }
        Ok(true)
    })?;
    Ok(idx)
}
