//! Segment files: naming, scanning frames (recovery, verify, `$all` reads)
//! and reading event records at known offsets.

#![deny(clippy::indexing_slicing)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::compress::{compressed_file_name, CompressedFile, CompressedFileError};
use crate::decode::DecodeError;
use crate::format::{
    align, parse_frame_header, verify_frame, FrameError, FrameHeader, FrameKind, FRAME_ALIGN,
    FRAME_HEADER_BYTES, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::io::{read_chunk, StorageFile};

/// Bytes read per chunk when scanning a segment sequentially.
pub const SCAN_CHUNK_BYTES: usize = 1 << 20;
/// Offsets closer than this are fetched with one read.
pub const READ_GROUP_SPAN_BYTES: u64 = 64 * 1024;
/// First guess of a record's size when reading it by position.
pub const RECORD_READ_GUESS_BYTES: u64 = 1024;

/// The file name of segment `n`.
pub fn segment_file_name(n: u32) -> String {
    format!("{n:08}.seg")
}

/// The file name of segment `n`'s index.
pub fn index_file_name(n: u32) -> String {
    format!("{n:08}.idx")
}

/// Parses a segment or index file name.
pub fn parse_file_number(name: &str, ext: &str) -> Option<u32> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 8 {
        return None;
    }
    stem.parse().ok()
}

/// An open segment file.
pub struct Segment {
    /// Its number (the high 32 bits of its positions).
    pub number: u32,
    /// Its path.
    pub path: PathBuf,
    /// The file.
    pub file: Arc<dyn StorageFile>,
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte up to `end` was a valid frame; nothing follows.
    Clean {
        /// Offset just past the last frame.
        end: u64,
    },
    /// The frame at `at` is incomplete or damaged and no valid frame follows:
    /// what a crash during a write leaves behind.
    Torn {
        /// Offset of the damaged frame.
        at: u64,
        /// What was wrong.
        reason: String,
    },
    /// The frame at `at` is damaged and valid frames follow it: real corruption.
    Corrupt {
        /// Offset of the damaged frame.
        at: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Walks the frames of `file` from `start` up to `limit` (the file length or
/// the visible tail), calling `f(offset, kind, body, shared, body_offset)`
/// for each valid frame. `shared` is the chunk the body lives in, so events
/// can reference it without copying. Stops early if `f` returns `false`.
pub fn scan_frames(
    file: &dyn StorageFile,
    start: u64,
    limit: u64,
    max_segment_bytes: u64,
    mut f: impl FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>,
) -> io::Result<ScanEnd> {
    let scan = Scan {
        file,
        limit,
        max_segment_bytes,
    };
    let mut offset = start;
    while offset < limit {
        match scan.chunk(offset, &mut f)? {
            Step::Next(next) => offset = next,
            Step::Stop(end) => return Ok(end),
        }
    }
    Ok(ScanEnd::Clean { end: offset })
}

/// One scan of a segment's frames up to `limit`.
struct Scan<'a> {
    file: &'a dyn StorageFile,
    limit: u64,
    max_segment_bytes: u64,
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
    fn chunk(
        &self,
        offset: u64,
        f: &mut impl FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>,
    ) -> io::Result<Step> {
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
            let header = match parse_frame_header(rest, self.max_segment_bytes as usize) {
                Ok(h) => h,
                Err(e) => return self.damaged(frame_at, e),
            };
            if rest.len() < FRAME_HEADER_BYTES + header.body_len {
                if at > 0 {
                    break; // re-read from this frame's start
                }
                return self.whole_frame(offset, &header, f);
            }
            let body = match verify_frame(rest, &header) {
                Ok(b) => b,
                Err(e) => return self.damaged(frame_at, e),
            };
            let total = header.total_len();
            if !call(
                f,
                frame_at,
                header.kind,
                body,
                &chunk,
                at + FRAME_HEADER_BYTES,
            )? {
                return Ok(Step::Stop(ScanEnd::Clean {
                    end: frame_at + total as u64,
                }));
            }
            at += total;
        }
        if at == 0 {
            // The file ends before `limit`.
            return self.damaged(offset, FrameError::Truncated);
        }
        Ok(Step::Next(offset + at as u64))
    }

    /// A frame larger than one chunk, at `offset`: read whole, once its
    /// length is known to stay within the scanned range.
    fn whole_frame(
        &self,
        offset: u64,
        header: &FrameHeader,
        f: &mut impl FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>,
    ) -> io::Result<Step> {
        let need = FRAME_HEADER_BYTES + header.body_len;
        if offset + need as u64 > self.limit {
            return self.damaged(offset, FrameError::Truncated);
        }
        let whole = Bytes::from(read_chunk(self.file, offset, need)?);
        if whole.len() < need {
            return self.damaged(offset, FrameError::Truncated);
        }
        let body = match verify_frame(&whole, header) {
            Ok(b) => b,
            Err(e) => return self.damaged(offset, e),
        };
        let end = offset + header.total_len() as u64;
        if !call(f, offset, header.kind, body, &whole, FRAME_HEADER_BYTES)? {
            return Ok(Step::Stop(ScanEnd::Clean { end }));
        }
        Ok(Step::Next(end))
    }

    /// The scan meets a bad frame at `at`: a torn tail or corruption.
    fn damaged(&self, at: u64, err: FrameError) -> io::Result<Step> {
        classify(self.file, at, self.limit, self.max_segment_bytes, err).map(Step::Stop)
    }
}

fn call(
    f: &mut impl FnMut(u64, FrameKind, &[u8], &Bytes, usize) -> Result<bool, DecodeError>,
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

/// Decides whether a bad frame at `at` is a torn tail or corruption: if any
/// valid frame starts after it, the damage is in the middle of the data.
fn classify(
    file: &dyn StorageFile,
    at: u64,
    limit: u64,
    max_segment_bytes: u64,
    err: FrameError,
) -> io::Result<ScanEnd> {
    let reason = match &err {
        FrameError::Empty => "zeroed bytes where a frame should start".to_string(),
        FrameError::Truncated => "incomplete frame".to_string(),
        FrameError::Invalid(r) => r.to_string(),
    };
    if let Some(next) = find_valid_frame_after(file, at, limit, max_segment_bytes)? {
        return Ok(ScanEnd::Corrupt {
            at,
            reason: format!("{reason}; a valid frame follows at offset {next}"),
        });
    }
    if matches!(err, FrameError::Empty) && at >= limit {
        return Ok(ScanEnd::Clean { end: at });
    }
    Ok(ScanEnd::Torn { at, reason })
}

/// The offset of the first valid frame strictly after `at`, if any.
pub fn find_valid_frame_after(
    file: &dyn StorageFile,
    at: u64,
    limit: u64,
    max_segment_bytes: u64,
) -> io::Result<Option<u64>> {
    let mut base = at + FRAME_ALIGN as u64;
    while base < limit {
        let want = ((limit - base) as usize).min(SCAN_CHUNK_BYTES);
        let chunk = read_chunk(file, base, want)?;
        let mut i = 0usize;
        while let Some(rest) = chunk.get(i..).filter(|r| r.len() >= FRAME_HEADER_BYTES) {
            if let Ok(h) = parse_frame_header(rest, max_segment_bytes as usize) {
                let off = base + i as u64;
                let need = FRAME_HEADER_BYTES + h.body_len;
                if off + need as u64 <= limit {
                    let valid = match rest.get(..need) {
                        Some(whole) => verify_frame(whole, &h).is_ok(),
                        None => verify_frame(&read_chunk(file, off, need)?, &h).is_ok(),
                    };
                    if valid {
                        return Ok(Some(off));
                    }
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

/// Reads the records at `offsets` (ascending) of one segment. Nearby offsets
/// share one read. Returns, per offset, the buffer and the record's start in it.
pub fn read_records(file: &dyn StorageFile, offsets: &[u64]) -> io::Result<Vec<(Bytes, usize)>> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut rest = offsets;
    while let Some(&start) = rest.first() {
        let group = rest
            .iter()
            .take_while(|&&off| off - start < READ_GROUP_SPAN_BYTES)
            .count();
        let (near, after) = rest.split_at(group);
        let end = near.last().map_or(start, |&last| last) + RECORD_READ_GUESS_BYTES;
        let buf = Bytes::from(read_chunk(file, start, (end - start) as usize)?);
        for &off in near {
            let rel = (off - start) as usize;
            let len = buf.get(rel..).map_or(0, record_len);
            if len >= RECORD_HEADER_BYTES && rel + len <= buf.len() {
                out.push((buf.clone(), rel));
            } else {
                out.push((read_one_record(file, off, len)?, 0));
            }
        }
        rest = after;
    }
    Ok(out)
}

/// Reads the record at `off` on its own: `len` is its length if the group
/// read saw it (0 if not).
fn read_one_record(file: &dyn StorageFile, off: u64, len: usize) -> io::Result<Bytes> {
    let need = if len >= RECORD_HEADER_BYTES {
        len
    } else {
        let head = read_chunk(file, off, 4)?;
        if head.len() < 4 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("record at offset {off} is past the end of the file"),
            ));
        }
        record_len(&head)
    };
    // The length comes from the file: it must not make us allocate more
    // than the file holds after the record's start.
    let present = file.len()?.saturating_sub(off);
    if need as u64 > present {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("record at offset {off} claims {need} bytes, {present} are present"),
        ));
    }
    Ok(Bytes::from(read_chunk(
        file,
        off,
        need.max(RECORD_HEADER_BYTES),
    )?))
}

/// The length field at the start of a record (0 if fewer than 4 bytes).
fn record_len(b: &[u8]) -> usize {
    crate::decode::Reader::new(b)
        .u32("record length")
        .map_or(0, |n| n as usize)
}

/// Offset of the first frame in a segment.
pub const FIRST_FRAME_OFFSET: u64 = align(SEGMENT_HEADER_BYTES) as u64;

/// The segment numbers present in `dir`, plain (`.seg`) or compressed (`.zseg`).
pub fn list_segment_numbers(
    storage: &dyn crate::io::Storage,
    dir: &std::path::Path,
) -> io::Result<Vec<u32>> {
    let mut v: Vec<u32> = storage
        .list(dir)?
        .iter()
        .filter_map(|n| parse_file_number(n, "seg").or_else(|| parse_file_number(n, "zseg")))
        .collect();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Why a segment could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenSegmentError {
    /// A file operation on the segment's files failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`opening`, `removing`, `syncing`).
        action: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The compressed form is damaged and no plain file backs it.
    #[error("{}: {source}", path.display())]
    Compressed {
        /// The compressed segment's file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: CompressedFileError,
    },
}

impl OpenSegmentError {
    fn io(action: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| OpenSegmentError::Io {
            action,
            path,
            source,
        }
    }
}

/// Opens segment `n` of `dir`: its compressed form if that is present and
/// sound, else the plain one. With `tidy`, a plain file made redundant by a
/// finished compression, and a damaged compressed file that a plain file
/// still backs, are removed (what a crash during compression leaves).
pub fn open_segment(
    storage: &dyn crate::io::Storage,
    dir: &std::path::Path,
    n: u32,
    tidy: bool,
) -> Result<Segment, OpenSegmentError> {
    let plain = dir.join(segment_file_name(n));
    let packed = dir.join(compressed_file_name(n));
    let has_plain = storage.exists(&plain);
    if storage.exists(&packed) {
        match open_compressed(storage, &packed, n) {
            Ok(c) => {
                if has_plain && tidy {
                    storage
                        .remove(&plain)
                        .map_err(OpenSegmentError::io("removing", &plain))?;
                    storage
                        .sync_dir(dir)
                        .map_err(OpenSegmentError::io("syncing", dir))?;
                }
                return Ok(Segment {
                    number: n,
                    path: packed,
                    file: Arc::new(c),
                });
            }
            Err(reason) if has_plain => {
                tracing::warn!(segment = n, reason = %reason, "ignoring an unfinished compressed segment");
                if tidy {
                    storage
                        .remove(&packed)
                        .map_err(OpenSegmentError::io("removing", &packed))?;
                }
            }
            Err(reason) => return Err(reason),
        }
    }
    let file = storage
        .open(&plain, false)
        .map_err(OpenSegmentError::io("opening", &plain))?;
    Ok(Segment {
        number: n,
        path: plain,
        file,
    })
}

/// Opens and checks the compressed segment file `path`.
fn open_compressed(
    storage: &dyn crate::io::Storage,
    path: &std::path::Path,
    n: u32,
) -> Result<CompressedFile, OpenSegmentError> {
    let file = storage
        .open(path, false)
        .map_err(OpenSegmentError::io("opening", path))?;
    CompressedFile::open(file, n).map_err(|source| OpenSegmentError::Compressed {
        path: path.to_path_buf(),
        source,
    })
}
