//! Test-only back door (cargo feature `testing`, off by default): rewrite a
//! stored event in place, as an attacker with write access to the data
//! directory would, so tests can prove that a check *above* the log (the
//! audit hash chain of `strata_scenarios::audit`) catches what the log's
//! own checksums cannot.
//!
//! [`overwrite_event_data`] replaces an event's data bytes with others of
//! the same length and recomputes the record's and the frame's CRC-32C, so
//! the store opens, reads and `strata verify`s cleanly afterwards. It works
//! on a *closed* store (it takes the directory's `LOCK`, and fails if the
//! store is open) and only on uncompressed segments (`NNNNNNNN.seg`); a
//! compressed segment (`.zseg`) is refused with
//! [`io::ErrorKind::Unsupported`]. Removing or reordering events would
//! change lengths and positions, which this back door does not attempt.
//!
//! Never enable this feature outside tests.

use std::fs::File;
use std::io;
use std::path::Path;

use strata_core::Position;

use crate::compress::compressed_file_name;
use crate::format::{
    align, decode_segment_header, parse_frame_header, record_offsets, split_position, FrameCheck,
    FrameError, FrameKind, RecordView, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::io::try_lock_file;
use crate::segment::segment_file_name;
use crate::store::LOCK_FILE;

/// Where one event record sits in its segment file.
struct Located {
    /// Byte offset of its frame.
    frame: usize,
    /// Byte length of the frame's header and body (what its CRC covers from 8).
    frame_end: usize,
    /// Byte offset of its record.
    record: usize,
    /// The record's length.
    record_len: usize,
    /// Byte offset of the data inside the file.
    data: usize,
    /// The data's length.
    data_len: usize,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Walks the frames of `bytes` (a whole segment file) to the record at
/// `offset`; fails unless an append frame holds a record starting exactly
/// there.
fn locate(bytes: &[u8], offset: usize) -> io::Result<Located> {
    let check = frame_check(bytes)?;
    let mut frame = SEGMENT_HEADER_BYTES;
    while let Some(rest) = bytes.get(frame..) {
        let header = match parse_frame_header(rest, rest.len(), check) {
            Ok(h) => h,
            Err(FrameError::Empty) => break, // end of data
            Err(e) => return Err(invalid(format!("frame at {frame}: {e:?}"))),
        };
        let frame_end = frame + FRAME_HEADER_BYTES + header.body_len;
        if frame_end > bytes.len() {
            return Err(invalid(format!(
                "frame at {frame} runs past the end of the file"
            )));
        }
        if offset < frame_end && offset >= frame {
            if header.kind != FrameKind::Append {
                return Err(invalid(format!(
                    "offset {offset} is inside a frame of kind {:?}, not an append",
                    header.kind
                )));
            }
            let body_at = frame + FRAME_HEADER_BYTES;
            let body = bytes.get(body_at..frame_end).unwrap_or_default();
            let records = record_offsets(body, body_at as u64)
                .map_err(|e| invalid(format!("frame at {frame}: {e}")))?;
            for (record, rel) in records {
                if record as usize != offset {
                    continue;
                }
                let view = RecordView::parse_in_verified_frame(body.get(rel..).unwrap_or_default())
                    .map_err(|e| invalid(format!("the record at {record}: {e}")))?;
                let record_len = view.len();
                let data_len = view.data().len();
                return Ok(Located {
                    frame,
                    frame_end,
                    record: offset,
                    record_len,
                    data: offset + record_len - data_len,
                    data_len,
                });
            }
            return Err(invalid(format!(
                "no event record starts at offset {offset} (frame at {frame})"
            )));
        }
        frame = align(frame_end);
    }
    Err(invalid(format!("no frame holds offset {offset}")))
}

/// How the frames of the segment file `bytes` are checked.
fn frame_check(bytes: &[u8]) -> io::Result<FrameCheck> {
    decode_segment_header(bytes)
        .map(|h| h.check)
        .map_err(|e| invalid(format!("segment header: {e}")))
}

/// Takes the store's `LOCK`, so nothing rewrites an open store.
fn lock(dir: &Path) -> io::Result<File> {
    try_lock_file(&dir.join(LOCK_FILE))?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is open (LOCK is held): close the store first",
                dir.display()
            ),
        )
    })
}

/// Reads the segment file of `position` (refusing compressed segments).
fn read_segment(
    dir: &Path,
    position: Position,
) -> io::Result<(std::path::PathBuf, Vec<u8>, usize)> {
    let (segment, offset) = split_position(position);
    let segments = dir.join("segments");
    let path = segments.join(segment_file_name(segment));
    if !path.exists() && segments.join(compressed_file_name(segment)).exists() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "segment {segment} is compressed; the testing back door only rewrites \
                 uncompressed segments"
            ),
        ));
    }
    let bytes = std::fs::read(&path)?;
    let offset = usize::try_from(offset).map_err(|_| invalid("offset out of range".into()))?;
    Ok((path, bytes, offset))
}

/// The data bytes of the event at `position`, read from the segment file of
/// the closed store in `dir`.
pub fn read_event_data(dir: &Path, position: Position) -> io::Result<Vec<u8>> {
    let _lock = lock(dir)?;
    let (_, bytes, offset) = read_segment(dir, position)?;
    let at = locate(&bytes, offset)?;
    Ok(bytes[at.data..at.data + at.data_len].to_vec())
}

/// Replaces the data of the event at `position` in the closed store in
/// `dir` with `new_data` (same length), recomputes the record's and the
/// frame's checksums and syncs the file: the log's own checks pass
/// afterwards. Fails if the store is open, the segment is compressed, no
/// event starts at `position` or the lengths differ.
pub fn overwrite_event_data(dir: &Path, position: Position, new_data: &[u8]) -> io::Result<()> {
    let _lock = lock(dir)?;
    let (path, mut bytes, offset) = read_segment(dir, position)?;
    let at = locate(&bytes, offset)?;
    if new_data.len() != at.data_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the event at {position} holds {} data bytes, the replacement {}: lengths must \
                 match",
                at.data_len,
                new_data.len()
            ),
        ));
    }
    bytes[at.data..at.data + at.data_len].copy_from_slice(new_data);
    let record_crc = crc32c::crc32c(&bytes[at.record + 8..at.record + at.record_len]);
    bytes[at.record + 4..at.record + 8].copy_from_slice(&record_crc.to_le_bytes());
    let frame_crc = frame_check(&bytes)?.crc(&bytes[at.frame + 8..at.frame_end]);
    bytes[at.frame + 4..at.frame + 8].copy_from_slice(&frame_crc.to_le_bytes());
    let mut file = File::options().write(true).open(&path)?;
    io::Write::write_all(&mut file, &bytes)?;
    file.sync_all()
}
