//! Reading a snapshot file record by record: what replay on open, compaction
//! and its read-back check all walk through.

#![deny(clippy::indexing_slicing)]

use std::io;

use super::record::{
    align_u64, decode_header, RecordHeader, RecordKind, MAX_RECORD_HEADER_BYTES,
    SNAPSHOT_FILE_HEADER_BYTES, SNAPSHOT_RECORD_ALIGN_BYTES,
};
use crate::io::StorageFile;

/// How much a scan reads from a file at a time.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Sequential reads of a file through a buffer, so that a scan does not make
/// one system call per record.
struct Window<'f> {
    file: &'f dyn StorageFile,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'f> Window<'f> {
    fn new(file: &'f dyn StorageFile, file_len: u64) -> Self {
        Window {
            file,
            file_len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// Up to `len` bytes at `offset` (fewer only at the end of the file).
    fn get(&mut self, offset: u64, len: usize) -> io::Result<&[u8]> {
        let avail = self.file_len.saturating_sub(offset);
        let len = (len as u64).min(avail) as usize;
        let end = offset + len as u64;
        if offset < self.start || end > self.start + self.buf.len() as u64 {
            let want = (len.max(SCAN_CHUNK_BYTES) as u64).min(avail) as usize;
            self.buf.resize(want, 0);
            self.file.read_exact_at(&mut self.buf, offset)?;
            self.start = offset;
        }
        let at = (offset - self.start) as usize;
        self.buf
            .get(at..at + len)
            .ok_or_else(|| io::Error::other("snapshot scan window out of range"))
    }
}

/// What a scan finds.
pub(super) enum Scanned<'a> {
    /// A record whose header checks out.
    Record {
        offset: u64,
        header: RecordHeader<'a>,
    },
    /// Bytes that are no record, followed by a valid record.
    Damaged { offset: u64, len: u64 },
}

/// Scans the records of a file of `file_len` bytes. Returns the offset of a
/// torn tail — invalid bytes with no valid record after them — if there is
/// one. With `verify_final_state`, a final snapshot record whose state fails
/// its checksum also counts as torn (the active file's last record is the
/// only one that can have been in flight at a crash).
pub(super) fn scan_records(
    file: &dyn StorageFile,
    file_len: u64,
    verify_final_state: bool,
    mut on: impl FnMut(Scanned<'_>),
) -> io::Result<Option<u64>> {
    let mut w = Window::new(file, file_len);
    let mut at = SNAPSHOT_FILE_HEADER_BYTES as u64;
    while at < file_len {
        let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
        match decode_header(b) {
            Ok(h) if at + h.record_len as u64 <= file_len => {
                let next = at + align_u64(h.record_len as u64);
                let verify =
                    verify_final_state && next >= file_len && h.kind == RecordKind::Snapshot;
                if !verify {
                    on(Scanned::Record {
                        offset: at,
                        header: h,
                    });
                    at = next;
                    continue;
                }
                let (header_len, record_len, crc) = (h.header_len, h.record_len, h.state_crc);
                let state = w.get(at + header_len as u64, record_len - header_len)?;
                if crc32c::crc32c(state) != crc {
                    return Ok(Some(at));
                }
                let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
                if let Ok(h) = decode_header(b) {
                    on(Scanned::Record {
                        offset: at,
                        header: h,
                    });
                }
                at = next;
            }
            _ => match find_valid_record(&mut w, at + SNAPSHOT_RECORD_ALIGN_BYTES as u64)? {
                Some(next) => {
                    on(Scanned::Damaged {
                        offset: at,
                        len: next - at,
                    });
                    at = next;
                }
                None => return Ok(Some(at)),
            },
        }
    }
    Ok(None)
}

/// Where the records of a snapshot file of `len` bytes end once a torn tail
/// is cut, as opening cuts the active file's, and whether bytes that are no
/// record lie before a valid record (damage, or a copy taken while a record
/// was being written: a torn tail is only ever at the end). Backups use it
/// to copy the active file consistently while the store writes to it.
pub(crate) fn torn_tail(file: &dyn StorageFile, len: u64) -> io::Result<(u64, bool)> {
    let mut damaged = false;
    let torn = scan_records(file, len, true, |item| {
        if let Scanned::Damaged { .. } = item {
            damaged = true;
        }
    })?;
    Ok((torn.unwrap_or(len), damaged))
}

/// The first offset at or after `at` (on the alignment) where a whole valid
/// record starts.
fn find_valid_record(w: &mut Window<'_>, mut at: u64) -> io::Result<Option<u64>> {
    while at < w.file_len {
        let b = w.get(at, MAX_RECORD_HEADER_BYTES)?;
        if let Ok(h) = decode_header(b) {
            if at + h.record_len as u64 <= w.file_len {
                return Ok(Some(at));
            }
        }
        at += SNAPSHOT_RECORD_ALIGN_BYTES as u64;
    }
    Ok(None)
}
