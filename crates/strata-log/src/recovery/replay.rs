//! Replaying segments: rebuilding the stream index (heads, positions and
//! the metadata that metadata streams' events set) after the checkpoint,
//! and the index of any segment whose index file is missing or unusable.

use strata_core::{Position, StreamId};

use crate::background::indexing::index_entry;
use crate::decode::DecodeError;
use crate::format::{decode_delete, position_of, FrameKind, RecordView, FRAME_HEADER_BYTES};
use crate::index::ActiveIndex;
use crate::streams::{DeleteKind, StreamIndex};

/// What replaying the log has rebuilt so far.
pub(super) struct Replay {
    /// Every stream's head and positions.
    pub(super) streams: StreamIndex,
    /// Position of the newest event seen.
    pub(super) head: Position,
    /// The newest `recorded_at` seen (`i64::MIN`: none).
    pub(super) last_recorded_at: i64,
    /// Where each hole met so far starts, ascending: a damaged run of bytes
    /// (a store opened read-only over damage) or a gap frame (a scavenge
    /// removed its events). Versions missing after a hole were in it.
    pub(super) holes: Vec<u64>,
}

/// How one segment is replayed.
pub(super) struct SegmentReplay {
    /// The segment's number.
    pub(super) segment: u32,
    /// Frames from this offset on change the stream index (earlier ones are
    /// covered by the checkpoint); `u64::MAX`: none do.
    pub(super) streams_from: u64,
    /// The index being rebuilt, if the segment needs one.
    pub(super) index: Option<ActiveIndex>,
}

/// A stored stream name (system streams included).
fn stored_stream(name: &str) -> Result<StreamId, DecodeError> {
    StreamId::any(name).map_err(|e| DecodeError::invalid("stream name", e.to_string()))
}

impl Replay {
    /// Applies the frame at `offset` of the segment `seg` describes.
    pub(super) fn frame(
        &mut self,
        seg: &mut SegmentReplay,
        offset: u64,
        kind: FrameKind,
        body: &[u8],
    ) -> Result<(), DecodeError> {
        if let Some(idx) = seg.index.as_mut() {
            idx.add_frame(offset);
        }
        let apply_streams = offset >= seg.streams_from;
        match kind {
            FrameKind::Append => {
                let body_start = offset + FRAME_HEADER_BYTES as u64;
                for (rec_off, rel) in crate::format::record_offsets(body, body_start)? {
                    let view = RecordView::parse_in_verified_frame(&body[rel..])?;
                    let position = position_of(seg.segment, rec_off).0;
                    self.event(seg, &view, position, apply_streams)?;
                }
            }
            FrameKind::Gap => self.hole_at(position_of(seg.segment, offset).0),
            FrameKind::Delete | FrameKind::Tombstone | FrameKind::Erase => {
                if let (true, Some(deletion)) = (apply_streams, DeleteKind::of_frame(kind)) {
                    let d = decode_delete(body)?;
                    let stream = stored_stream(&d.stream)?;
                    self.catch_up(&stream, d.deleted_through)?;
                    self.streams
                        .record_delete(&stream, d.deleted_through, deletion);
                }
            }
        }
        Ok(())
    }

    /// A delete says `stream` had `through` versions: those the log no
    /// longer shows were in a hole (a scavenge removed every event of a
    /// deleted stream, or damage hid them).
    fn catch_up(&mut self, stream: &StreamId, through: u64) -> Result<(), DecodeError> {
        let head = self.streams.streams.get(stream.as_str()).map(|e| &e.head);
        let version = head.map_or(0, |h| h.version);
        if through <= version {
            return Ok(());
        }
        let since = head.and_then(|h| h.last_position).map_or(0, |p| p.0);
        match self.lost_since(since) {
            Some(at) => {
                self.streams.add_lost(stream, through, at);
                Ok(())
            }
            None => Err(DecodeError::invalid(
                "delete",
                format!("stream `{stream}` is deleted through version {through} but has {version} versions"),
            )),
        }
    }

    /// Records a hole starting at `position`.
    pub(super) fn hole_at(&mut self, position: u64) {
        self.holes.push(position);
    }

    /// The first hole after `position`: where versions of a stream that are
    /// missing after its event at `position` were.
    fn lost_since(&self, position: u64) -> Option<u64> {
        self.holes.iter().copied().find(|d| *d > position)
    }

    /// Adds version `version` of `stream` at `position` to the stream
    /// table. `head` is the stream's version and last position before it;
    /// a gap in versions is accepted only where a hole of the log after
    /// that position explains it (the missing versions are noted as lost).
    fn apply_event(
        &mut self,
        stream: &StreamId,
        version: u64,
        position: u64,
        head: Option<(u64, u64)>,
    ) -> Result<(), DecodeError> {
        let (current, since) = head.unwrap_or((0, 0));
        if version != current + 1 {
            let at = self
                .lost_since(since)
                .filter(|_| version > current + 1)
                .ok_or_else(|| {
                    DecodeError::invalid(
                        "stream version",
                        format!("stream `{stream}` jumps from version {current} to {version}"),
                    )
                })?;
            self.streams.add_lost(stream, version - 1, at);
        }
        self.streams.add_event(stream, version, position);
        Ok(())
    }

    fn event(
        &mut self,
        seg: &mut SegmentReplay,
        view: &RecordView<'_>,
        position: u64,
        apply_streams: bool,
    ) -> Result<(), DecodeError> {
        let stream = stored_stream(view.stream)?;
        if let Some(idx) = seg.index.as_mut().filter(|_| !view.is_removed()) {
            idx.add(&index_entry(view, position));
        }
        if apply_streams {
            let entry = self.streams.streams.get(stream.as_str());
            // A checkpoint written while the writer went on may hold events
            // after the location it covers: those are not applied again.
            let held = entry.is_some_and(|e| {
                view.version
                    .checked_sub(1)
                    .and_then(|i| e.positions.get(i as usize))
                    == Some(&position)
            });
            if !held {
                let head = entry.map(|e| {
                    let since = e.head.last_position.map_or(0, |p| p.0);
                    (e.head.version, since)
                });
                self.apply_event(&stream, view.version, position, head)?;
            }
            // Replay is in log order: the latest event of a metadata stream wins.
            self.streams.note_metadata(view.stream, view.data());
        }
        self.head = self.head.max(Position(position));
        self.last_recorded_at = self.last_recorded_at.max(view.recorded_at_micros());
        Ok(())
    }
}
