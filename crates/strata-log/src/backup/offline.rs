//! The log of a store directory read without opening the store: for a store
//! another process has open (its `LOCK` is held), so no writer can be asked
//! for a sync.
//!
//! The last segment is copied up to the end of its chain of whole, valid
//! frames (every frame's length leads to the next, its sequence number is
//! one more than the last, its salted checksum passes). Frames the sync
//! floors do not yet prove durable are included: an idle store's last
//! acknowledged batch is proven by no later frame, so a floor rule would
//! leave acknowledged events out of every backup of a quiet server. A frame
//! of the chain is whole and checksummed, and the copy ends on a frame
//! boundary, so the restored store opens without a torn-tail cut. (Only a
//! power cut of the original machine in the moment between the write of
//! such a frame and its sync could leave the backup with an event the
//! original lost; the next backup then sees the original's segment differ
//! from the copy and copies it whole again.)

use std::path::{Path, PathBuf};

use strata_core::Position;

use super::error::BackupError;
use super::source::LogView;
use crate::format::{
    position_of, record_offsets, FrameKind, FRAME_HEADER_BYTES, MAX_SEGMENT_BYTES_LIMIT,
};
use crate::io::FsStorage;
use crate::segment::{
    list_segment_numbers, open_segment, scan_frames, ScanEnd, Segment, FIRST_FRAME_OFFSET,
};

/// Scans of the last segment that may meet a frame being written (a read
/// racing the writer can see a frame half written and the next one whole)
/// before a break in the chain is taken for real damage.
const MAX_SCAN_ATTEMPTS: usize = 3;

/// The log of the store in `dir` as its files are now.
pub(crate) fn scan_dir(dir: &Path) -> Result<LogView, BackupError> {
    let seg_dir = dir.join("segments");
    let numbers =
        list_segment_numbers(&FsStorage, &seg_dir).map_err(BackupError::io("listing", &seg_dir))?;
    let Some((&last, _)) = numbers.split_last() else {
        return Err(BackupError::Damaged {
            file: seg_dir,
            reason: "holds no segment: not a Strata log store".into(),
        });
    };
    for w in numbers.windows(2) {
        if let [a, b] = w {
            if *b != a + 1 {
                return Err(BackupError::Damaged {
                    file: seg_dir,
                    reason: format!("segment {} is missing", a + 1),
                });
            }
        }
    }
    let (active, segment) = match open(&seg_dir, last) {
        Ok(s) => (last, s),
        // A segment whose header is not written yet is being created: the
        // one before it is complete, and is where the log ends.
        Err(_) if numbers.len() > 1 => (last - 1, open(&seg_dir, last - 1)?),
        Err(e) => return Err(e),
    };
    let (end, last_event) = chain_end(&segment)?;
    let position = match last_event {
        Some(p) => p,
        None => last_event_before(&seg_dir, active)?,
    };
    Ok(LogView {
        sealed: numbers.into_iter().filter(|n| *n < active).collect(),
        active,
        active_file: segment.file.clone(),
        active_path: segment.path.clone(),
        end,
        position,
    })
}

/// Opens segment `n` without tidying anything (another process owns the store).
fn open(seg_dir: &Path, n: u32) -> Result<Segment, BackupError> {
    open_segment(&FsStorage, seg_dir, n, false).map_err(|e| BackupError::Damaged {
        file: seg_dir.join(crate::segment::segment_file_name(n)),
        reason: e.to_string(),
    })
}

/// Where the chain of valid frames of `segment` ends, and the position of
/// its last event.
fn chain_end(segment: &Segment) -> Result<(u64, Option<Position>), BackupError> {
    let mut last_reason = String::new();
    for _ in 0..MAX_SCAN_ATTEMPTS {
        let (end, last_event) = scan(segment)?;
        match end {
            ScanEnd::Clean { end, .. } => return Ok((end, last_event)),
            ScanEnd::Torn { at, .. } => return Ok((at, last_event)),
            ScanEnd::Corrupt { at, reason } => last_reason = format!("offset {at}: {reason}"),
        }
    }
    Err(BackupError::Damaged {
        file: segment.path.clone(),
        reason: format!("{last_reason}; run `strata verify` on the store"),
    })
}

/// One scan of `segment`'s frames: how it ended and its last event.
fn scan(segment: &Segment) -> Result<(ScanEnd, Option<Position>), BackupError> {
    let io = |e| BackupError::io("reading", &segment.path)(e);
    let limit = segment.file.len().map_err(io)?;
    let mut last_event = None;
    let end = scan_frames(
        segment.file.as_ref(),
        segment.check,
        FIRST_FRAME_OFFSET,
        limit,
        MAX_SEGMENT_BYTES_LIMIT,
        |offset, kind, body, _, _| {
            if kind == FrameKind::Append {
                let records = record_offsets(body, offset + FRAME_HEADER_BYTES as u64)?;
                if let Some((at, _)) = records.last() {
                    last_event = Some(position_of(segment.number, *at));
                }
            }
            Ok(true)
        },
    )
    .map_err(|e| BackupError::io("reading", &segment.path)(e))?;
    Ok((end, last_event))
}

/// The position of the last event in the segments before `active` (0 if
/// none holds one): the newest segments are read first.
fn last_event_before(seg_dir: &Path, active: u32) -> Result<Position, BackupError> {
    for n in (0..active).rev() {
        let segment = match open(seg_dir, n) {
            Ok(s) => s,
            // Segments are contiguous from the first one on: none below it.
            Err(_) if !exists(seg_dir, n) => break,
            Err(e) => return Err(e),
        };
        if let (_, Some(p)) = scan(&segment)? {
            return Ok(p);
        }
    }
    Ok(Position::START)
}

/// Whether segment `n` is present, plain or compressed.
fn exists(seg_dir: &Path, n: u32) -> bool {
    let plain: PathBuf = seg_dir.join(crate::segment::segment_file_name(n));
    let packed = seg_dir.join(crate::compress::compressed_file_name(n));
    plain.exists() || packed.exists()
}
