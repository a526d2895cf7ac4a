//! Reading a compressed segment as if it were the plain one.

#![deny(clippy::indexing_slicing)]

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::decode::DecodeError;
use crate::io::{read_chunk, StorageFile};

use crate::compress::layout::{decode_table, BlockRef, Header, HEADER_BYTES};

/// Decompressed blocks kept per compressed segment.
pub const BLOCK_CACHE_BLOCKS: usize = 8;

/// Why a compressed segment could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CompressedFileError {
    /// Reading the file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Its header or block table is not what the format allows.
    #[error("{0}")]
    Decode(#[from] DecodeError),
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
    pub fn open(file: Arc<dyn StorageFile>, segment: u32) -> Result<Self, CompressedFileError> {
        let file_len = file.len()?;
        let head = read_chunk(file.as_ref(), 0, HEADER_BYTES)?;
        let header = Header::decode(&head, segment, file_len)?;
        // `Header::decode` bounded the table by the file's length.
        let table = read_chunk(file.as_ref(), HEADER_BYTES as u64, header.table_bytes())?;
        let blocks = decode_table(&table, &header, file_len)?;
        Ok(CompressedFile {
            file,
            uncompressed_len: header.uncompressed_len,
            block_bytes: header.block_bytes,
            blocks,
            cache: Mutex::new(VecDeque::with_capacity(BLOCK_CACHE_BLOCKS)),
        })
    }

    /// Bytes on disk.
    pub fn compressed_len(&self) -> io::Result<u64> {
        self.file.len()
    }

    /// Decompressed block `i`, checked against its checksum and size.
    fn block(&self, i: usize) -> io::Result<Bytes> {
        if let Some((_, b)) = self.cache.lock().iter().find(|(n, _)| *n == i) {
            return Ok(b.clone());
        }
        let r = self
            .blocks
            .get(i)
            .ok_or_else(|| invalid(format!("block {i} out of range")))?;
        // `decode_table` checked that the block lies inside the file.
        let z = read_chunk(self.file.as_ref(), r.offset, r.len as usize)?;
        if z.len() != r.len as usize || crc32c::crc32c(&z) != r.crc {
            return Err(invalid(format!(
                "compressed block {i} at offset {} fails its checksum",
                r.offset
            )));
        }
        let expect = if i + 1 == self.blocks.len() {
            (self.uncompressed_len - (i * self.block_bytes) as u64) as usize
        } else {
            self.block_bytes
        };
        let raw = zstd::bulk::decompress(&z, expect)?;
        if raw.len() != expect {
            return Err(invalid(format!(
                "compressed block {i} decompresses to the wrong size"
            )));
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

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
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
            let n = block.len().saturating_sub(within).min((end - at) as usize);
            let (Some(dst), Some(src)) =
                (buf.get_mut(done..done + n), block.get(within..within + n))
            else {
                return Err(invalid(format!(
                    "compressed block {i} is shorter than its place"
                )));
            };
            if n == 0 {
                return Err(invalid(format!(
                    "compressed block {i} is shorter than its place"
                )));
            }
            dst.copy_from_slice(src);
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
