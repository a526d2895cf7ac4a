//! The torn-tail rule.
//!
//! A crash can leave the active segment ending in a frame that was only
//! partly written: incomplete, zeroed, or failing its checksum, with no valid
//! frame after it. Such a frame was never acknowledged (acknowledgement
//! follows `fdatasync`), so it is cut. A damaged frame that a valid frame
//! follows, or a damaged frame in a sealed segment, is corruption: the store
//! refuses to open rather than drop acknowledged data.

use strata_core::{Error, Result};
use tracing::warn;

use crate::segment::{ScanEnd, Segment, FIRST_FRAME_OFFSET};
use crate::state::location;

/// Applies the rule to segment `seg` (`len` bytes long) whose scan ended at
/// `end`. Returns where the valid frames of the segment end.
pub(super) fn settle_tail(seg: &Segment, len: u64, end: ScanEnd, is_active: bool) -> Result<u64> {
    let io = |what: &str, e| Error::io(format!("{what} {}", seg.path.display()), e);
    match end {
        ScanEnd::Clean { end } => {
            if is_active && end < len {
                // Zeroed bytes past the last frame (preallocated or never written).
                seg.file.set_len(end).map_err(|e| io("trimming", e))?;
            }
            Ok(end.max(FIRST_FRAME_OFFSET))
        }
        ScanEnd::Torn { at, reason } if is_active => {
            warn!(segment = seg.number, offset = at, reason = %reason, "cutting a torn tail left by a crash");
            seg.file
                .set_len(at)
                .and_then(|_| seg.file.sync_data())
                .map_err(|e| io("cutting the torn tail of", e))?;
            Ok(at)
        }
        ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } => Err(Error::Corrupt {
            location: location(&seg.path, at),
            reason,
        }),
    }
}
