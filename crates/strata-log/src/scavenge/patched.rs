//! A segment with some frames rewritten, read as one file: what a scavenge
//! compresses into the segment's new form.

use std::io;
use std::sync::Arc;

use crate::format::FRAME_HEADER_BYTES;
use crate::io::StorageFile;

/// One rewritten frame.
#[derive(Debug, Clone)]
pub(crate) enum Patch {
    /// A gap frame at `at`: this header, then `body_len` zeros.
    Gap {
        /// The frame's offset.
        at: u64,
        /// Its new header.
        header: [u8; FRAME_HEADER_BYTES],
        /// Bytes of zeros after it.
        body_len: usize,
    },
    /// The frame at `at` is these bytes now (header and body, same length).
    Frame {
        /// The frame's offset.
        at: u64,
        /// Its new bytes.
        bytes: Vec<u8>,
    },
}

impl Patch {
    fn at(&self) -> u64 {
        match self {
            Patch::Gap { at, .. } | Patch::Frame { at, .. } => *at,
        }
    }

    fn len(&self) -> u64 {
        match self {
            Patch::Gap { body_len, .. } => (FRAME_HEADER_BYTES + body_len) as u64,
            Patch::Frame { bytes, .. } => bytes.len() as u64,
        }
    }

    /// The patched byte at `offset` (inside the patch).
    fn byte(&self, offset: u64) -> u8 {
        let rel = (offset - self.at()) as usize;
        match self {
            Patch::Gap { header, .. } => header.get(rel).copied().unwrap_or(0),
            Patch::Frame { bytes, .. } => bytes.get(rel).copied().unwrap_or(0),
        }
    }
}

/// `base` with `patches` (ascending, not overlapping) laid over it.
/// Read-only.
pub(crate) struct PatchedFile {
    base: Arc<dyn StorageFile>,
    patches: Vec<Patch>,
}

impl PatchedFile {
    /// The view of `base` with `patches`.
    pub(crate) fn new(base: Arc<dyn StorageFile>, mut patches: Vec<Patch>) -> Self {
        patches.sort_by_key(Patch::at);
        PatchedFile { base, patches }
    }
}

fn read_only() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "a patched segment is read-only")
}

impl StorageFile for PatchedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.base.read_at(buf, offset)?;
        let end = offset + n as u64;
        let first = self.patches.partition_point(|p| p.at() + p.len() <= offset);
        for p in self.patches.iter().skip(first) {
            if p.at() >= end {
                break;
            }
            let from = p.at().max(offset);
            let to = (p.at() + p.len()).min(end);
            for o in from..to {
                if let Some(b) = buf.get_mut((o - offset) as usize) {
                    *b = p.byte(o);
                }
            }
        }
        Ok(n)
    }

    fn write_all_at(&self, _buf: &[u8], _offset: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&self, _len: u64) -> io::Result<()> {
        Err(read_only())
    }

    fn len(&self) -> io::Result<u64> {
        self.base.len()
    }
}
