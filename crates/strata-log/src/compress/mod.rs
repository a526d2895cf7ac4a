//! Compression of sealed segments: zstd in independent blocks, so one event
//! can be read by decompressing only the block(s) that hold it.
//!
//! A compressed segment (`NNNNNNNN.zseg`) presents the same bytes as the
//! plain segment it replaces through [`CompressedFile`], a read-only
//! [`StorageFile`], so every reader (scans, point reads, verify, recovery)
//! works on both unchanged. Positions keep referring to uncompressed offsets.

mod file;
mod layout;

use std::io;

use crate::io::{read_chunk, StorageFile};

pub use file::{CompressedFile, CompressedFileError, BLOCK_CACHE_BLOCKS};
pub use layout::MAX_COMPRESSION_BLOCK_BYTES;
use layout::{Header, HEADER_BYTES, TABLE_ENTRY_BYTES};

/// Default uncompressed size of one block.
pub const DEFAULT_COMPRESSION_BLOCK_BYTES: usize = 64 * 1024;
/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// How sealed segments are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compression {
    /// zstd level (1–19; 3 is zstd's default).
    pub level: i32,
    /// Uncompressed bytes per block: larger compresses better, smaller reads
    /// less for one event.
    pub block_bytes: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            level: DEFAULT_ZSTD_LEVEL,
            block_bytes: DEFAULT_COMPRESSION_BLOCK_BYTES,
        }
    }
}

/// The file name of compressed segment `n`.
pub fn compressed_file_name(n: u32) -> String {
    format!("{n:08}.zseg")
}

/// Compresses the first `len` bytes of `src` (a sealed segment) into `dst`.
/// Returns the compressed file's size. `dst` is synced.
pub fn compress_segment(
    src: &dyn StorageFile,
    len: u64,
    dst: &dyn StorageFile,
    segment: u32,
    cfg: Compression,
) -> io::Result<u64> {
    let block = cfg.block_bytes.clamp(4096, MAX_COMPRESSION_BLOCK_BYTES);
    let n_blocks = len.div_ceil(block as u64) as usize;
    let table_bytes = n_blocks * TABLE_ENTRY_BYTES + 8;
    let mut out_at = (HEADER_BYTES + table_bytes) as u64;
    let mut table = Vec::with_capacity(table_bytes);
    dst.set_len(0)?;
    let mut offset = 0u64;
    while offset < len {
        let want = ((len - offset) as usize).min(block);
        let raw = read_chunk(src, offset, want)?;
        if raw.len() != want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment shorter than expected while compressing",
            ));
        }
        let z = zstd::bulk::compress(&raw, cfg.level)?;
        dst.write_all_at(&z, out_at)?;
        table.extend_from_slice(&out_at.to_le_bytes());
        table.extend_from_slice(&(z.len() as u32).to_le_bytes());
        table.extend_from_slice(&crc32c::crc32c(&z).to_le_bytes());
        out_at += z.len() as u64;
        offset += want as u64;
    }
    let table_crc = crc32c::crc32c(&table);
    table.extend_from_slice(&table_crc.to_le_bytes());
    table.extend_from_slice(&[0u8; 4]);
    let header = Header {
        segment,
        block_bytes: block,
        uncompressed_len: len,
        n_blocks,
    }
    .encode();
    dst.write_all_at(&header, 0)?;
    dst.write_all_at(&table, HEADER_BYTES as u64)?;
    dst.sync_data()?;
    Ok(out_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{FsStorage, Storage};

    #[test]
    fn roundtrip_reads_any_range() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage;
        let src = fs.open(&dir.path().join("a.seg"), true).unwrap();
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| b"{\"amount\":12,\"k\":\"v\"}"[(i % 21) as usize])
            .collect();
        src.write_all_at(&data, 0).unwrap();
        let dst = fs.open(&dir.path().join("a.zseg"), true).unwrap();
        let cfg = Compression {
            level: 3,
            block_bytes: 4096,
        };
        let size = compress_segment(src.as_ref(), data.len() as u64, dst.as_ref(), 7, cfg).unwrap();
        assert!(size < data.len() as u64 / 4, "JSON-like data must compress");
        let c = CompressedFile::open(dst.clone(), 7).unwrap();
        assert!(CompressedFile::open(dst.clone(), 8).is_err());
        assert_eq!(c.len().unwrap(), data.len() as u64);
        for (off, len) in [
            (0, 10),
            (4090, 20),
            (4096, 4096),
            (299_990, 50),
            (123_456, 9000),
        ] {
            let mut buf = vec![0u8; len];
            let n = c.read_at(&mut buf, off).unwrap();
            let end = (off as usize + len).min(data.len());
            assert_eq!(&buf[..n], &data[off as usize..end]);
        }
        assert!(c.write_all_at(b"x", 0).is_err());
    }

    #[test]
    fn damaged_block_is_an_error_not_data() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FsStorage;
        let src = fs.open(&dir.path().join("a.seg"), true).unwrap();
        src.write_all_at(&vec![7u8; 20_000], 0).unwrap();
        let path = dir.path().join("a.zseg");
        let dst = fs.open(&path, true).unwrap();
        let cfg = Compression {
            level: 1,
            block_bytes: 4096,
        };
        let size = compress_segment(src.as_ref(), 20_000, dst.as_ref(), 1, cfg).unwrap();
        let mut last = [0u8; 1];
        dst.read_at(&mut last, size - 2).unwrap();
        last[0] ^= 0xff;
        dst.write_all_at(&last, size - 2).unwrap();
        let c = CompressedFile::open(dst, 1).unwrap();
        let mut buf = vec![0u8; 100];
        assert!(c.read_at(&mut buf, 0).is_ok());
        assert!(c.read_at(&mut buf, 19_950).is_err());
    }
}
