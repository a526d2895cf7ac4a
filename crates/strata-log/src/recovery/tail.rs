//! The torn-tail rule.
//!
//! A crash can leave the active segment ending in a frame that was only
//! partly written: incomplete, zeroed, or failing its checksum, perhaps with
//! later frames of the same unsynced writes after it. The scan's rule
//! ([`crate::segment::ScanEnd`]) tells such a torn tail, which was never
//! acknowledged (acknowledgement follows `fdatasync`) and is cut, from
//! damage to frames that had been made durable, which is corruption: the
//! store refuses to open rather than drop acknowledged data. A damaged frame
//! in a sealed segment is always corruption.

use strata_core::{Error, Result};
use tracing::warn;

use crate::segment::{ScanEnd, Segment, FIRST_FRAME_OFFSET};
use crate::state::location;

/// Where the valid frames of a segment end, and the sequence number of the
/// frame that comes next.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tail {
    pub(super) end: u64,
    pub(super) next_seq: u32,
}

/// Applies the rule to segment `seg` (`len` bytes long) whose scan ended at
/// `end`: a torn tail of the active segment is cut, damage is an error. (A
/// store opened read-only over damage steps over damage instead and changes
/// no file: see [`super::damaged`].)
pub(super) fn settle_tail(seg: &Segment, len: u64, end: ScanEnd, is_active: bool) -> Result<Tail> {
    let io = |what: &str, e| Error::io(format!("{what} {}", seg.path.display()), e);
    match end {
        ScanEnd::Clean { end, next_seq } => {
            if is_active && end < len {
                // Zeroed bytes past the last frame (preallocated or never written).
                seg.file.set_len(end).map_err(|e| io("trimming", e))?;
            }
            Ok(Tail {
                end: end.max(FIRST_FRAME_OFFSET),
                next_seq: next_seq.max(1),
            })
        }
        ScanEnd::Torn {
            at,
            next_seq,
            reason,
        } if is_active => {
            warn!(segment = seg.number, offset = at, reason = %reason, "cutting a torn tail left by a crash");
            seg.file
                .set_len(at)
                .map_err(|e| io("cutting the torn tail of", e))?;
            Ok(Tail {
                end: at,
                next_seq: next_seq.max(1),
            })
        }
        ScanEnd::Torn { at, reason, .. } | ScanEnd::Corrupt { at, reason } => Err(Error::Corrupt {
            location: location(&seg.path, at),
            reason,
        }),
    }
}
