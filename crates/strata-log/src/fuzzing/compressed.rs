//! Compressed segments: header, block table and zstd blocks.

use std::sync::Arc;

use super::mem::MemFile;
use super::{put_crc, u32_at};
use crate::compress::{compress_segment, CompressedFile, Compression};
use crate::io::{read_chunk, StorageFile};

/// Header bytes, and where the block table starts.
const HEADER_BYTES: usize = 48;
/// Bytes of one block table entry.
const ENTRY_BYTES: usize = 16;
/// Most uncompressed bytes read back from one input.
const MAX_READ: u64 = 4 << 20;

/// A compressed segment: opened (header and block table checked) and read
/// back whole; a copy with every checksum recomputed is read too. The same
/// bytes, compressed as a plain segment, must read back as themselves.
/// Returns whether the input opened and read back whole.
pub fn compressed_segment(data: &[u8]) -> bool {
    let whole = read_back(data).is_some();
    let _ = read_back(&with_checksums(data));
    roundtrip(data);
    whole
}

/// Opens `data` as compressed segment (the number its header names) and
/// reads every byte; `None` on any error.
fn read_back(data: &[u8]) -> Option<Vec<u8>> {
    let f = CompressedFile::open(MemFile::with(data), u32_at(data, 12)).ok()?;
    let len = f.len().ok()?;
    if len > MAX_READ {
        // Still read across the first blocks.
        let _ = read_chunk(&f, 0, 1 << 16);
        return None;
    }
    let plain = read_chunk(&f, 0, len as usize).ok()?;
    assert_eq!(
        plain.len() as u64,
        len,
        "a compressed segment reads back whole"
    );
    Some(plain)
}

/// `data` with the checksums of its blocks, table and header recomputed
/// (as far as its fields say where they are).
fn with_checksums(data: &[u8]) -> Vec<u8> {
    let mut b = data.to_vec();
    let n = u32_at(data, 32) as usize;
    let n = n.min(b.len().saturating_sub(HEADER_BYTES) / ENTRY_BYTES);
    for i in 0..n {
        let e = HEADER_BYTES + i * ENTRY_BYTES;
        let offset = u32_at(&b, e) as usize;
        let len = u32_at(&b, e + 8) as usize;
        put_crc(&mut b, offset..offset.saturating_add(len), e + 12);
    }
    let table_end = HEADER_BYTES + n * ENTRY_BYTES;
    put_crc(&mut b, HEADER_BYTES..table_end, table_end);
    put_crc(&mut b, ..40, 40);
    b
}

/// Compresses `data` as segment 9 and reads it back.
fn roundtrip(data: &[u8]) {
    let dst = Arc::new(MemFile::default());
    let cfg = Compression {
        level: 1,
        block_bytes: 4096,
    };
    compress_segment(&*MemFile::with(data), data.len() as u64, &*dst, 9, cfg)
        .expect("compressing in memory");
    let file = CompressedFile::open(dst, 9).expect("a compressed segment opens");
    let back = read_chunk(&file, 0, data.len()).expect("a compressed segment reads back");
    assert_eq!(
        back, data,
        "a compressed segment reads back as its plain bytes"
    );
}

/// Valid compressed segments.
pub(super) fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, plain) in [
        ("empty", Vec::new()),
        ("one-block", b"STRATALG".repeat(100)),
        (
            "three-blocks",
            (0..10_000u32).map(|i| (i % 251) as u8).collect(),
        ),
    ] {
        let dst = MemFile::default();
        let cfg = Compression {
            level: 3,
            block_bytes: 4096,
        };
        if compress_segment(&*MemFile::with(&plain), plain.len() as u64, &dst, 4, cfg).is_ok() {
            out.push(("compressed", name.to_string(), dst.bytes()));
        }
    }
    out
}
