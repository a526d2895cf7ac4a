//! Walking the frames of a segment in order: recovery, verify, indexing and
//! `$all` reads. A scan follows the chain of frames (each frame's length
//! leads to the next, and in format 2 each frame's sequence number is one
//! more than the last); the first frame that breaks the chain ends it, and
//! [`classify`](super::classify) decides what the break is.

#![deny(clippy::indexing_slicing)]

use std::io;

use bytes::Bytes;

use crate::decode::DecodeError;
use crate::format::{
    parse_frame_header, verify_frame, FrameCheck, FrameError, FrameHeader, FrameKind,
    FRAME_HEADER_BYTES,
};
use crate::io::{read_chunk, StorageFile};
use crate::segment::classify::{self, classify};
use crate::segment::{FIRST_FRAME_OFFSET, SCAN_CHUNK_BYTES};

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to `end` was a valid frame; nothing follows.
    Clean {
        /// Offset just past the last frame.
        end: u64,
        /// Sequence number the next frame would carry (format 2; 0 when the
        /// scan did not start at the first frame, or in format 1).
        next_seq: u32,
    },
    /// The frame at `at` is incomplete or damaged, and nothing after it was
    /// ever made durable: what a crash during a write leaves behind.
    Torn {
        /// Offset of the damaged frame.
        at: u64,
        /// Sequence number the damaged frame should have carried.
        next_seq: u32,
        /// What was wrong.
        reason: String,
    },
    /// The frame at `at` is damaged and a later frame shows it had been
    /// made durable: real corruption.
    Corrupt {
        /// Offset of the damaged frame.
        at: u64,
        /// What was wrong.
        reason: String,
    },
}

/// What a scan hands each valid frame: its offset, kind and body, the chunk
/// the body lives in (so events can reference it without copying) and the
/// body's offset in that chunk. Returning `false` stops the scan.
pub trait FrameVisitor:
    FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>
{
}
impl<F: FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>> FrameVisitor
    for F
{
}

/// Walks the frames of `file` (checked by `check`) from `start` up to
/// `limit` (the file length or the visible tail), calling `f` for each valid
/// frame. Stops early if `f` returns `false`.
pub fn scan_frames(
    file: &dyn StorageFile,
    check: FrameCheck,
    start: u64,
    limit: u64,
    max_segment_bytes: u64,
    f: impl FrameVisitor,
) -> io::Result<ScanEnd> {
    let expect = (check.sequenced() && start == FIRST_FRAME_OFFSET).then_some(1);
    scan_frames_expecting(file, check, start, expect, limit, max_segment_bytes, f)
}

/// [`scan_frames`] from a frame whose sequence number is known to be
/// `expect` (format 2), so the chain is checked from there on: how a read
/// of a damaged segment goes on after the damage.
pub fn scan_frames_expecting(
    file: &dyn StorageFile,
    check: FrameCheck,
    start: u64,
    expect: Option<u32>,
    limit: u64,
    max_segment_bytes: u64,
    mut f: impl FrameVisitor,
) -> io::Result<ScanEnd> {
    let mut scan = Scan {
        file,
        check,
        limit,
        max_segment_bytes,
        expect: expect.filter(|_| check.sequenced()),
    };
    let mut offset = start;
    while offset < limit {
        match scan.chunk(offset, &mut f)? {
            Step::Next(next) => offset = next,
            Step::Stop(end) => return Ok(end),
        }
    }
    Ok(ScanEnd::Clean {
        end: offset,
        next_seq: scan.expect.unwrap_or(0),
    })
}

/// One scan of a segment's frames up to `limit`.
struct Scan<'a> {
    file: &'a dyn StorageFile,
    check: FrameCheck,
    limit: u64,
    max_segment_bytes: u64,
    /// The sequence number the next frame must carry, when known.
    expect: Option<u32>,
}

/// Where a scan goes after one chunk.
enum Step {
    /// The next chunk starts at this offset.
    Next(u64),
    /// The scan is over.
    Stop(ScanEnd),
}

impl Scan<'_> {
    /// Reads one chunk at `offset` and hands each whole, valid frame in it to
    /// `f`. A frame that only starts in the chunk is read again from its start
    /// by the next chunk (or whole, if it is larger than a chunk).
    fn chunk(&mut self, offset: u64, f: &mut impl FrameVisitor) -> io::Result<Step> {
        let want = ((self.limit - offset) as usize).min(SCAN_CHUNK_BYTES);
        let chunk = Bytes::from(read_chunk(self.file, offset, want)?);
        let mut at = 0usize;
        while offset + (at as u64) < self.limit {
            let Some(rest) = chunk.get(at..).filter(|r| !r.is_empty()) else {
                break;
            };
            if rest.len() < FRAME_HEADER_BYTES && at > 0 {
                break; // re-read from this frame's start
            }
            let frame_at = offset + at as u64;
            let header = match self.header(rest) {
                Ok(h) => h,
                Err(e) => return self.damaged(frame_at, e),
            };
            if rest.len() < FRAME_HEADER_BYTES + header.body_len {
                if at > 0 {
                    break; // re-read from this frame's start
                }
                return self.whole_frame(offset, &header, f);
            }
            let body = match verify_frame(rest, &header, self.check) {
                Ok(b) => b,
                Err(e) => return self.damaged(frame_at, e),
            };
            let total = header.total_len();
            self.passed(&header);
            if !call(
                f,
                frame_at,
                header.kind,
                body,
                &chunk,
                at + FRAME_HEADER_BYTES,
            )? {
                return Ok(Step::Stop(self.clean(frame_at + total as u64)));
            }
            at += total;
        }
        if at == 0 {
            // The file ends before `limit`.
            return self.damaged(offset, FrameError::Truncated);
        }
        Ok(Step::Next(offset + at as u64))
    }

    /// Parses a frame header and checks that it continues the chain.
    fn header(&self, rest: &[u8]) -> Result<FrameHeader, FrameError> {
        let h = parse_frame_header(rest, self.max_segment_bytes as usize, self.check)?;
        match self.expect {
            Some(e) if h.seq != e => Err(FrameError::Invalid(DecodeError::invalid(
                "frame sequence",
                format!("frame sequence {} where {e} was expected", h.seq),
            ))),
            _ => Ok(h),
        }
    }

    /// A valid frame: the next one must carry the next sequence number.
    fn passed(&mut self, h: &FrameHeader) {
        if self.check.sequenced() {
            self.expect = Some(h.seq.saturating_add(1));
        }
    }

    fn clean(&self, end: u64) -> ScanEnd {
        ScanEnd::Clean {
            end,
            next_seq: self.expect.unwrap_or(0),
        }
    }

    /// A frame larger than one chunk, at `offset`: read whole, once its
    /// length is known to stay within the scanned range.
    fn whole_frame(
        &mut self,
        offset: u64,
        header: &FrameHeader,
        f: &mut impl FrameVisitor,
    ) -> io::Result<Step> {
        let need = FRAME_HEADER_BYTES + header.body_len;
        if offset + need as u64 > self.limit {
            return self.damaged(offset, FrameError::Truncated);
        }
        let whole = Bytes::from(read_chunk(self.file, offset, need)?);
        if whole.len() < need {
            return self.damaged(offset, FrameError::Truncated);
        }
        let body = match verify_frame(&whole, header, self.check) {
            Ok(b) => b,
            Err(e) => return self.damaged(offset, e),
        };
        let end = offset + header.total_len() as u64;
        self.passed(header);
        if !call(f, offset, header.kind, body, &whole, FRAME_HEADER_BYTES)? {
            return Ok(Step::Stop(self.clean(end)));
        }
        Ok(Step::Next(end))
    }

    /// The scan meets a bad frame at `at`: a torn tail or corruption.
    fn damaged(&self, at: u64, err: FrameError) -> io::Result<Step> {
        let place = classify::Place {
            file: self.file,
            check: self.check,
            limit: self.limit,
            max_segment_bytes: self.max_segment_bytes,
        };
        classify(&place, at, self.expect, err).map(Step::Stop)
    }
}

fn call(
    f: &mut impl FrameVisitor,
    offset: u64,
    kind: FrameKind,
    body: &[u8],
    shared: &Bytes,
    body_at: usize,
) -> io::Result<bool> {
    f(offset, kind, body, shared, body_at).map_err(|reason| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame at offset {offset}: {reason}"),
        )
    })
}
