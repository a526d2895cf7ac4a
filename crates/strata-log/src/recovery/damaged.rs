//! Recovery of a store opened read-only over damage
//! (`LogConfig::allow_damaged`): a damaged run of bytes is recorded and
//! skipped, and the scan goes on at the next frame that passes its check,
//! so everything outside the damage is indexed and served. No file changes.

use strata_core::{Error, Result};

use crate::format::{align, position_of, FRAME_HEADER_BYTES};
use crate::recovery::replay::{Replay, SegmentReplay};
use crate::recovery::tail::Tail;
use crate::segment::{
    next_valid_frame, scan_frames_expecting, DamagedBytes, ScanEnd, Segment, FIRST_FRAME_OFFSET,
};

/// Replays every readable frame of `seg` (`len` bytes), stepping over damage.
/// Returns where the valid frames end (the active segment's torn tail, if
/// any, is left in place) and the damaged runs, ascending.
pub(super) fn replay_past_damage(
    seg: &Segment,
    len: u64,
    is_active: bool,
    max_segment_bytes: u64,
    replay: &mut Replay,
    seg_replay: &mut SegmentReplay,
) -> Result<(Tail, Vec<DamagedBytes>)> {
    let mut damage = Vec::new();
    let mut start = FIRST_FRAME_OFFSET;
    let mut expect = Some(1);
    loop {
        // Where the last valid frame ends, should the scan fail outright.
        let mut good_end = start;
        let scanned = scan_frames_expecting(
            seg.file.as_ref(),
            seg.check,
            start,
            expect,
            len,
            max_segment_bytes,
            |offset, kind, body, _shared, _at| {
                replay.frame(seg_replay, offset, kind, body)?;
                good_end = offset + align(FRAME_HEADER_BYTES + body.len()) as u64;
                Ok(true)
            },
        );
        let (at, reason) = match scanned {
            Ok(ScanEnd::Clean { end, next_seq }) => {
                let tail = Tail {
                    end: end.max(FIRST_FRAME_OFFSET),
                    next_seq: next_seq.max(1),
                };
                return Ok((tail, damage));
            }
            Ok(ScanEnd::Torn { at, next_seq, .. }) if is_active => {
                let tail = Tail {
                    end: at,
                    next_seq: next_seq.max(1),
                };
                return Ok((tail, damage));
            }
            Ok(ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason }) => (at, reason),
            // A frame that passed its check but does not decode, or a
            // compressed block that fails its own: nothing after the last
            // good frame of this segment is trusted.
            Err(e) => {
                let d = DamagedBytes {
                    start: good_end,
                    end: u64::MAX,
                    reason: e.to_string(),
                };
                return Ok(skip_rest(seg, d, replay, damage));
            }
        };
        let next = next_valid_frame(seg.file.as_ref(), seg.check, at, len, max_segment_bytes)
            .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
        match next {
            Some((next, seq)) => {
                replay.hole_at(position_of(seg.number, at).0);
                damage.push(DamagedBytes {
                    start: at,
                    end: next,
                    reason,
                });
                start = next;
                expect = Some(seq);
            }
            None => {
                let d = DamagedBytes {
                    start: at,
                    end: u64::MAX,
                    reason,
                };
                return Ok(skip_rest(seg, d, replay, damage));
            }
        }
    }
}

/// The damage `d` runs to the end of the segment.
fn skip_rest(
    seg: &Segment,
    d: DamagedBytes,
    replay: &mut Replay,
    mut damage: Vec<DamagedBytes>,
) -> (Tail, Vec<DamagedBytes>) {
    replay.hole_at(position_of(seg.number, d.start).0);
    let tail = Tail {
        end: d.start,
        next_seq: 0,
    };
    damage.push(d);
    (tail, damage)
}
