//! Segment files: naming, scanning frames (recovery, verify, `$all` reads)
//! and reading event records at known offsets.

#![deny(clippy::indexing_slicing)]

mod classify;
mod damage;
mod scan;

pub use classify::next_valid_frame;
pub use damage::DamagedBytes;
pub use scan::{scan_frames, scan_frames_expecting, FrameVisitor, ScanEnd};

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::compress::{compressed_file_name, CompressedFile, CompressedFileError};
use crate::decode::DecodeError;
use crate::format::{
    align, decode_segment_header, FrameCheck, SegmentHeader, RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
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

/// File name of sealed segment `n`'s tag file (beside its index file).
pub fn tag_file_name(n: u32) -> String {
    format!("{n:08}.tags")
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
    /// How its frames are checked (from its header).
    pub check: FrameCheck,
    /// Bytes known to be damaged, ascending (only in a store opened
    /// read-only over damage; empty otherwise).
    pub damage: Vec<DamagedBytes>,
}

impl Segment {
    /// Whether the record bytes `rec` read at an indexed position are a
    /// place a scavenge emptied (inside a gap frame): zeros, trusted as such
    /// only in a compressed segment, whose block checksums prove they were
    /// written so. Elsewhere zeros are damage, reported by the parse.
    pub fn removed_at(&self, rec: &[u8]) -> bool {
        self.path.extension().is_some_and(|e| e == "zseg")
            && rec.get(..4).is_some_and(|len| len == [0u8; 4])
    }
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
    /// The segment header is unreadable or damaged.
    #[error("{}: {source}", path.display())]
    Header {
        /// The segment's file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
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
                let file: Arc<dyn StorageFile> = Arc::new(c);
                let header = read_header(file.as_ref(), &packed)?;
                return Ok(Segment {
                    number: n,
                    path: packed,
                    file,
                    check: header.check,
                    damage: Vec::new(),
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
    let header = read_header(file.as_ref(), &plain)?;
    Ok(Segment {
        number: n,
        path: plain,
        file,
        check: header.check,
        damage: Vec::new(),
    })
}

/// Reads and checks the header of the segment file `file` at `path`.
pub fn read_header(
    file: &dyn StorageFile,
    path: &std::path::Path,
) -> Result<SegmentHeader, OpenSegmentError> {
    let bytes = read_chunk(file, 0, SEGMENT_HEADER_BYTES)
        .map_err(OpenSegmentError::io("reading the header of", path))?;
    decode_segment_header(&bytes).map_err(|source| OpenSegmentError::Header {
        path: path.to_path_buf(),
        source,
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
