//! Planning one segment's scavenge: which frames change, and how.

#![deny(clippy::indexing_slicing)]

use strata_core::Result;

use crate::background::indexing::walk_sealed;
use crate::decode::DecodeError;
use crate::format::removal::{gap_frame_header, remove_record, reseal_frame};
use crate::format::{
    record_offsets, FrameCheck, FrameHeader, FrameKind, RecordView, FRAME_HEADER_BYTES,
};
use crate::scavenge::cuts::Cuts;
use crate::scavenge::patched::Patch;
use crate::segment::Segment;

/// What a scavenge changes in one segment.
#[derive(Debug, Default)]
pub(crate) struct Rewrite {
    /// The rewritten frames.
    pub(crate) patches: Vec<Patch>,
    /// Events removed.
    pub(crate) events_removed: u64,
}

/// Walks `seg` and plans the removal of every event `cuts` removes.
pub(crate) fn plan(seg: &Segment, cuts: &Cuts, max_segment_bytes: u64) -> Result<Rewrite> {
    let mut out = Rewrite::default();
    let check = seg.check;
    walk_sealed(
        seg,
        max_segment_bytes,
        |offset, kind, body, shared, body_at| {
            if kind != FrameKind::Append {
                return Ok(true);
            }
            let frame = body_at
                .checked_sub(FRAME_HEADER_BYTES)
                .and_then(|start| shared.get(start..body_at + body.len()))
                .ok_or_else(|| DecodeError::invalid("frame", "frame header outside its chunk"))?;
            if let Some(p) = plan_frame(offset, frame, body, cuts, check, &mut out.events_removed)?
            {
                out.patches.push(p);
            }
            Ok(true)
        },
    )?;
    Ok(out)
}

/// The patch of the append frame at `offset` (`frame`: header and body),
/// if any of its events go.
fn plan_frame(
    offset: u64,
    frame: &[u8],
    body: &[u8],
    cuts: &Cuts,
    check: FrameCheck,
    removed: &mut u64,
) -> Result<Option<Patch>, DecodeError> {
    let mut going = Vec::new();
    let mut live = 0usize;
    for (_, rel) in record_offsets(body, 0)? {
        let rest = body.get(rel..).unwrap_or_default();
        let view = RecordView::parse_in_verified_frame(rest)?;
        if view.is_removed() {
            continue;
        }
        if cuts.removes(view.stream, view.version, view.recorded_at_micros()) {
            going.push((rel, view.len()));
        } else {
            live += 1;
        }
    }
    if going.is_empty() {
        return Ok(None);
    }
    *removed += going.len() as u64;
    let header: [u8; FRAME_HEADER_BYTES] = frame
        .get(..FRAME_HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| DecodeError::invalid("frame", "short frame header"))?;
    let h = FrameHeader {
        body_len: body.len(),
        crc: 0,
        kind: FrameKind::Append,
        seq: 0,
        floor: 0,
    };
    if live == 0 {
        return Ok(Some(Patch::Gap {
            at: offset,
            header: gap_frame_header(&header, &h, check),
            body_len: body.len(),
        }));
    }
    let mut bytes = frame.to_vec();
    for (rel, len) in going {
        let at = FRAME_HEADER_BYTES + rel;
        let rec = bytes
            .get_mut(at..at + len)
            .ok_or_else(|| DecodeError::invalid("record", "record outside its frame"))?;
        remove_record(rec)?;
    }
    reseal_frame(&mut bytes, check);
    Ok(Some(Patch::Frame { at: offset, bytes }))
}
