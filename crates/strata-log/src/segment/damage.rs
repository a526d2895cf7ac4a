//! Damaged bytes of a segment: what a store opened read-only over damage
//! (`LogConfig::allow_damaged`) knows it cannot read, so that reads refuse
//! exactly those bytes and serve everything else.

use crate::format::position_of;
use crate::segment::{Segment, FIRST_FRAME_OFFSET};

/// A run of damaged bytes in one segment: from the first frame that fails
/// its check up to the next frame that passes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedBytes {
    /// Offset of the first damaged byte.
    pub start: u64,
    /// Offset of the next valid frame; `u64::MAX`: the damage runs to the
    /// end of the segment.
    pub end: u64,
    /// What is wrong at `start`.
    pub reason: String,
}

impl DamagedBytes {
    /// The whole of a segment that cannot be read at all.
    pub fn whole_segment(reason: String) -> Self {
        DamagedBytes {
            start: FIRST_FRAME_OFFSET,
            end: u64::MAX,
            reason,
        }
    }

    /// Whether `offset` lies in the damage.
    pub fn holds(&self, offset: u64) -> bool {
        (self.start..self.end).contains(&offset)
    }
}

impl Segment {
    /// The damage that holds `offset`, if any.
    pub fn damage_at(&self, offset: u64) -> Option<&DamagedBytes> {
        self.damage.iter().find(|d| d.holds(offset))
    }

    /// The first damage that ends after `from`: where a sequential read from
    /// `from` must stop.
    pub fn damage_after(&self, from: u64) -> Option<&DamagedBytes> {
        self.damage.iter().find(|d| d.end > from)
    }

    /// Where reading can go on after `d`: the next valid frame, or the next
    /// segment's first frame.
    pub fn resume_after(&self, d: &DamagedBytes) -> u64 {
        if d.end == u64::MAX {
            position_of(self.number.saturating_add(1), FIRST_FRAME_OFFSET).0
        } else {
            position_of(self.number, d.end).0
        }
    }
}
