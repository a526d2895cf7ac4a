//! Compression of sealed segments: zstd in independent blocks, so one event
//! can be read by decompressing only the block(s) that hold it.
//!
//! A compressed segment (`NNNNNNNN.zseg`) presents the same bytes as the
//! plain segment it replaces through [`CompressedFile`], a read-only
//! [`StorageFile`], so every reader (scans, point reads, verify, recovery)
//! works on both unchanged. Positions keep referring to uncompressed offsets.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::format::{u32_at, u64_at};
use crate::io::StorageFile;
use crate::segment::read_chunk;

/// Default uncompressed size of one block.
pub const DEFAULT_COMPRESSION_BLOCK_BYTES: usize = 64 * 1024;
/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;
/// Decompressed blocks kept per compressed segment.
pub const BLOCK_CACHE_BLOCKS: usize = 8;
/// Largest block size accepted when reading a file.
pub const MAX_COMPRESSION_BLOCK_BYTES: usize = 16 * 1024 * 1024;

const MAGIC: &[u8; 8] = b"STRATAZS";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 48;
const TABLE_ENTRY_BYTES: usize = 16;

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
    let mut header = Vec::with_capacity(HEADER_BYTES);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&segment.to_le_bytes());
    header.extend_from_slice(&(block as u32).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&len.to_le_bytes());
    header.extend_from_slice(&(n_blocks as u64).to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header.resize(HEADER_BYTES, 0);
    dst.write_all_at(&header, 0)?;
    dst.write_all_at(&table, HEADER_BYTES as u64)?;
    dst.sync_data()?;
    Ok(out_at)
}

struct BlockRef {
    offset: u64,
    len: u32,
    crc: u32,
}

/// A compressed segment read as if it were the plain one.
pub struct CompressedFile {
    file: Arc<dyn StorageFile>,
    uncompressed_len: u64,
    block_bytes: usize,
    blocks: Vec<BlockRef>,
    cache: Mutex<VecDeque<(usize, Bytes)>>,
}

impl CompressedFile {
    /// Opens and checks a compressed segment's header and block table.
    pub fn open(file: Arc<dyn StorageFile>, segment: u32) -> Result<Self, String> {
        let head = read_chunk(file.as_ref(), 0, HEADER_BYTES).map_err(|e| e.to_string())?;
        if head.len() < HEADER_BYTES || &head[0..8] != MAGIC {
            return Err("not a compressed segment (bad magic)".into());
        }
        if crc32c::crc32c(&head[..40]) != u32_at(&head, 40) {
            return Err("compressed segment header checksum mismatch".into());
        }
        if u32_at(&head, 8) != VERSION {
            return Err(format!("compressed segment version {}", u32_at(&head, 8)));
        }
        if u32_at(&head, 12) != segment {
            return Err(format!("header names segment {}", u32_at(&head, 12)));
        }
        let block_bytes = u32_at(&head, 16) as usize;
        let uncompressed_len = u64_at(&head, 24);
        let n_blocks = u64_at(&head, 32) as usize;
        if block_bytes == 0
            || block_bytes > MAX_COMPRESSION_BLOCK_BYTES
            || uncompressed_len.div_ceil(block_bytes as u64) != n_blocks as u64
        {
            return Err("compressed segment header is inconsistent".into());
        }
        let table_len = n_blocks * TABLE_ENTRY_BYTES;
        let table = read_chunk(file.as_ref(), HEADER_BYTES as u64, table_len + 8)
            .map_err(|e| e.to_string())?;
        if table.len() < table_len + 8 {
            return Err("compressed segment block table is truncated".into());
        }
        if crc32c::crc32c(&table[..table_len]) != u32_at(&table, table_len) {
            return Err("compressed segment block table checksum mismatch".into());
        }
        let blocks = table[..table_len]
            .chunks_exact(TABLE_ENTRY_BYTES)
            .map(|c| BlockRef {
                offset: u64_at(c, 0),
                len: u32_at(c, 8),
                crc: u32_at(c, 12),
            })
            .collect();
        Ok(CompressedFile {
            file,
            uncompressed_len,
            block_bytes,
            blocks,
            cache: Mutex::new(VecDeque::with_capacity(BLOCK_CACHE_BLOCKS)),
        })
    }

    /// Bytes on disk.
    pub fn compressed_len(&self) -> io::Result<u64> {
        self.file.len()
    }

    fn block(&self, i: usize) -> io::Result<Bytes> {
        if let Some((_, b)) = self.cache.lock().iter().find(|(n, _)| *n == i) {
            return Ok(b.clone());
        }
        let r = self.blocks.get(i).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("block {i} out of range"),
            )
        })?;
        let z = read_chunk(self.file.as_ref(), r.offset, r.len as usize)?;
        if z.len() != r.len as usize || crc32c::crc32c(&z) != r.crc {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "compressed block {i} at offset {} fails its checksum",
                    r.offset
                ),
            ));
        }
        let expect = if i + 1 == self.blocks.len() {
            (self.uncompressed_len - (i * self.block_bytes) as u64) as usize
        } else {
            self.block_bytes
        };
        let raw = zstd::bulk::decompress(&z, expect)?;
        if raw.len() != expect {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("compressed block {i} decompresses to the wrong size"),
            ));
        }
        let raw = Bytes::from(raw);
        let mut cache = self.cache.lock();
        if cache.len() >= BLOCK_CACHE_BLOCKS {
            cache.pop_front();
        }
        cache.push_back((i, raw.clone()));
        Ok(raw)
    }
}

fn read_only() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "compressed segments are read-only",
    )
}

impl StorageFile for CompressedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.uncompressed_len || buf.is_empty() {
            return Ok(0);
        }
        let mut done = 0usize;
        let end = (offset + buf.len() as u64).min(self.uncompressed_len);
        let mut at = offset;
        while at < end {
            let i = (at / self.block_bytes as u64) as usize;
            let block = self.block(i)?;
            let within = (at - (i * self.block_bytes) as u64) as usize;
            let n = (block.len() - within).min((end - at) as usize);
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
            at += n as u64;
        }
        Ok(done)
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
        Ok(self.uncompressed_len)
    }
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
