//! The torn-tail rule: is a broken frame what a crash during a write left
//! behind (a torn tail, cut on open), or damage to data that had been made
//! durable (corruption, never cut silently)?
//!
//! Format 2 decides on what a payload cannot forge. Each frame carries its
//! sequence number in the segment and its sync floor, the first sequence
//! number that had not been made durable when the frame was written, and
//! its checksum starts from the segment's random salt, so no event data can
//! hold a frame that passes the check. When the frame numbered `e` is
//! broken, the break is corruption only if a valid later frame has a floor
//! above `e`: that frame was written after frame `e` had been synced. Valid
//! frames after the break whose floor is at most `e` were written while it
//! was still unsynced, so they are what a power cut leaves when it keeps a
//! later write and loses an earlier one: the tail is torn there.
//!
//! Format 1 frames have no sequence: any valid frame after the break makes
//! it corruption.

#![deny(clippy::indexing_slicing)]

use std::io;

use crate::format::{
    parse_frame_header, verify_frame, FrameCheck, FrameError, FrameHeader, FRAME_ALIGN,
    FRAME_HEADER_BYTES,
};
use crate::io::{read_chunk, StorageFile};
use crate::segment::scan::ScanEnd;
use crate::segment::SCAN_CHUNK_BYTES;

/// The segment a broken frame is in.
pub(super) struct Place<'a> {
    pub(super) file: &'a dyn StorageFile,
    pub(super) check: FrameCheck,
    /// The end of the bytes to consider.
    pub(super) limit: u64,
    pub(super) max_segment_bytes: u64,
}

/// Decides whether a bad frame at `at`, which should have carried sequence
/// number `expect` (when known), is a torn tail or corruption.
pub(super) fn classify(
    place: &Place<'_>,
    at: u64,
    expect: Option<u32>,
    err: FrameError,
) -> io::Result<ScanEnd> {
    let reason = match &err {
        FrameError::Empty => "zeroed bytes where a frame should start".to_string(),
        FrameError::Truncated => "incomplete frame".to_string(),
        FrameError::Invalid(r) => r.to_string(),
    };
    // Which later frame proves the broken one had been made durable.
    let proves = |h: &FrameHeader| match (place.check.sequenced(), expect) {
        (true, Some(e)) => h.floor > e,
        _ => true,
    };
    if let Some((next, h)) = find_frame_after(place, at, proves)? {
        let why = match (place.check.sequenced(), expect) {
            (true, Some(e)) => format!(
                "{reason}; frame {} at offset {next} was written after frame {e} here was made durable",
                h.seq
            ),
            _ => format!("{reason}; a valid frame follows at offset {next}"),
        };
        return Ok(ScanEnd::Corrupt { at, reason: why });
    }
    let next_seq = expect.unwrap_or(0);
    if matches!(err, FrameError::Empty) && at >= place.limit {
        return Ok(ScanEnd::Clean { end: at, next_seq });
    }
    Ok(ScanEnd::Torn {
        at,
        next_seq,
        reason,
    })
}

/// The first valid frame of `file` strictly after the damaged one at `at`,
/// up to `limit`: its offset and sequence number. Format 2's salted
/// checksum means no event data can pass for it.
pub fn next_valid_frame(
    file: &dyn StorageFile,
    check: FrameCheck,
    at: u64,
    limit: u64,
    max_segment_bytes: u64,
) -> io::Result<Option<(u64, u32)>> {
    let place = Place {
        file,
        check,
        limit,
        max_segment_bytes,
    };
    Ok(find_frame_after(&place, at, |_| true)?.map(|(off, h)| (off, h.seq)))
}

/// The first valid frame strictly after `at` that `proves` accepts: its
/// offset and header.
pub(super) fn find_frame_after(
    place: &Place<'_>,
    at: u64,
    proves: impl Fn(&FrameHeader) -> bool,
) -> io::Result<Option<(u64, FrameHeader)>> {
    let limit = place.limit;
    let mut base = at + FRAME_ALIGN as u64;
    while base < limit {
        let want = ((limit - base) as usize).min(SCAN_CHUNK_BYTES);
        let chunk = read_chunk(place.file, base, want)?;
        let mut i = 0usize;
        while let Some(rest) = chunk.get(i..).filter(|r| r.len() >= FRAME_HEADER_BYTES) {
            let off = base + i as u64;
            if let Some(h) = valid_frame_at(place, rest, off)? {
                if proves(&h) {
                    return Ok(Some((off, h)));
                }
            }
            i += FRAME_ALIGN;
        }
        // `i` is the first offset whose header did not fit in this chunk.
        if chunk.len() < want || i == 0 {
            break;
        }
        base += i as u64;
    }
    Ok(None)
}

/// The header of the valid frame at `off` (whose bytes start `rest`), if one is there.
fn valid_frame_at(place: &Place<'_>, rest: &[u8], off: u64) -> io::Result<Option<FrameHeader>> {
    let Ok(h) = parse_frame_header(rest, place.max_segment_bytes as usize, place.check) else {
        return Ok(None);
    };
    let need = FRAME_HEADER_BYTES + h.body_len;
    if off + need as u64 > place.limit {
        return Ok(None);
    }
    let valid = match rest.get(..need) {
        Some(whole) => verify_frame(whole, &h, place.check).is_ok(),
        None => verify_frame(&read_chunk(place.file, off, need)?, &h, place.check).is_ok(),
    };
    Ok(valid.then_some(h))
}
