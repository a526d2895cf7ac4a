//! The layout of a compressed segment file: header and block table.
//!
//! ```text
//! header (48 bytes)  magic "STRATAZS", version u32, segment u32,
//!                    block_bytes u32, reserved u32 (0), uncompressed_len u64,
//!                    n_blocks u64, crc32c of the 40 bytes before it u32,
//!                    4 zero bytes
//! block table        n_blocks × (offset u64, len u32, crc32c u32),
//!                    crc32c of the entries u32, 4 zero bytes
//! blocks             zstd frames, each `len` bytes at `offset`
//! ```

#![deny(clippy::indexing_slicing)]

use crate::decode::{check_crc, DecodeError, Reader};

/// Largest block size accepted when reading a file.
pub const MAX_COMPRESSION_BLOCK_BYTES: usize = 16 * 1024 * 1024;
const MAGIC: &[u8; 8] = b"STRATAZS";
const VERSION: u32 = 1;
/// Size of the header; the block table starts here.
pub(super) const HEADER_BYTES: usize = 48;
/// Header bytes its checksum covers.
const HEADER_CHECKED_BYTES: usize = 40;
/// Size of one block table entry.
pub(super) const TABLE_ENTRY_BYTES: usize = 16;
/// Bytes after the table entries: their checksum and 4 zero bytes.
pub(super) const TABLE_TRAILER_BYTES: usize = 8;

/// A compressed segment's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    /// The segment it holds.
    pub(super) segment: u32,
    /// Uncompressed bytes per block (the last block may hold fewer).
    pub(super) block_bytes: usize,
    /// Size of the plain segment.
    pub(super) uncompressed_len: u64,
    /// Number of blocks.
    pub(super) n_blocks: usize,
}

impl Header {
    /// The header's bytes.
    pub(super) fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = Vec::with_capacity(HEADER_BYTES);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&self.segment.to_le_bytes());
        h.extend_from_slice(&(self.block_bytes as u32).to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&self.uncompressed_len.to_le_bytes());
        h.extend_from_slice(&(self.n_blocks as u64).to_le_bytes());
        let crc = crc32c::crc32c(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        h.resize(HEADER_BYTES, 0);
        let mut out = [0u8; HEADER_BYTES];
        out.copy_from_slice(&h);
        out
    }

    /// Decodes and checks a header that should name `segment`, in a file of
    /// `file_len` bytes.
    pub(super) fn decode(b: &[u8], segment: u32, file_len: u64) -> Result<Header, DecodeError> {
        let mut r = Reader::new(b);
        if r.array::<8>("compressed segment magic").ok() != Some(*MAGIC) {
            return Err(DecodeError::invalid(
                "compressed segment magic",
                "not a compressed segment (bad magic)",
            ));
        }
        let checked = Reader::new(b).bytes(HEADER_CHECKED_BYTES, "compressed segment header")?;
        let mut c = Reader::new(b);
        c.skip(HEADER_CHECKED_BYTES, "compressed segment header")?;
        check_crc(
            checked,
            c.u32("compressed segment header checksum")?,
            "compressed segment header",
        )?;
        let version = r.u32("compressed segment version")?;
        if version != VERSION {
            return Err(DecodeError::invalid(
                "compressed segment version",
                format!("compressed segment version {version}"),
            ));
        }
        let named = r.u32("compressed segment number")?;
        if named != segment {
            return Err(DecodeError::invalid(
                "compressed segment number",
                format!("header names segment {named}"),
            ));
        }
        let block_bytes = r.u32("block size")? as usize;
        r.skip(4, "compressed segment reserved bytes")?;
        let uncompressed_len = r.u64("uncompressed length")?;
        // The table must fit in the file: that bounds the block count before
        // anything is allocated for it.
        let max_blocks = (file_len as usize).saturating_sub(HEADER_BYTES + TABLE_TRAILER_BYTES)
            / TABLE_ENTRY_BYTES;
        let n_blocks = r.len_u64(max_blocks, "block count")?;
        if block_bytes == 0
            || block_bytes > MAX_COMPRESSION_BLOCK_BYTES
            || uncompressed_len.div_ceil(block_bytes as u64) != n_blocks as u64
        {
            return Err(DecodeError::invalid(
                "compressed segment header",
                "compressed segment header is inconsistent",
            ));
        }
        Ok(Header {
            segment,
            block_bytes,
            uncompressed_len,
            n_blocks,
        })
    }

    /// Bytes of the block table including its trailer.
    pub(super) fn table_bytes(&self) -> usize {
        self.n_blocks * TABLE_ENTRY_BYTES + TABLE_TRAILER_BYTES
    }
}

/// Where one compressed block lies in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlockRef {
    /// Offset of the compressed bytes.
    pub(super) offset: u64,
    /// Their length.
    pub(super) len: u32,
    /// Their crc32c.
    pub(super) crc: u32,
}

/// Decodes and checks the block table of a file of `file_len` bytes; every
/// block must lie after the table and inside the file.
pub(super) fn decode_table(
    b: &[u8],
    header: &Header,
    file_len: u64,
) -> Result<Vec<BlockRef>, DecodeError> {
    let mut r = Reader::new(b);
    let entries = r.bytes(
        header.n_blocks * TABLE_ENTRY_BYTES,
        "compressed segment block table",
    )?;
    let stored = r.u32("compressed segment block table checksum")?;
    check_crc(entries, stored, "compressed segment block table")?;
    let data_start = (HEADER_BYTES + header.table_bytes()) as u64;
    let mut r = Reader::new(entries);
    let mut blocks = Vec::with_capacity(header.n_blocks);
    for _ in 0..header.n_blocks {
        let block = BlockRef {
            offset: r.u64("block offset")?,
            len: r.u32("block length")?,
            crc: r.u32("block checksum")?,
        };
        let end = block.offset.checked_add(u64::from(block.len));
        if block.offset < data_start || end.is_none_or(|end| end > file_len) {
            return Err(DecodeError::invalid(
                "block table entry",
                format!(
                    "block at offset {} of {} bytes lies outside the file's blocks",
                    block.offset, block.len
                ),
            ));
        }
        blocks.push(block);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            segment: 3,
            block_bytes: 4096,
            uncompressed_len: 10_000,
            n_blocks: 3,
        }
    }

    #[test]
    fn header_roundtrip_and_every_truncation() {
        let h = header();
        let b = h.encode();
        assert_eq!(Header::decode(&b, 3, 1 << 20), Ok(h));
        for n in 0..HEADER_CHECKED_BYTES + 4 {
            assert!(Header::decode(b.get(..n).unwrap_or_default(), 3, 1 << 20).is_err());
        }
    }

    #[test]
    fn every_flipped_header_byte_is_caught() {
        let b = header().encode();
        for i in 0..HEADER_CHECKED_BYTES + 4 {
            let mut d = b;
            if let Some(x) = d.get_mut(i) {
                *x ^= 0x10;
            }
            assert!(Header::decode(&d, 3, 1 << 20).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_huge_block_count_is_refused_before_allocation() {
        let mut h = header();
        h.n_blocks = 1 << 40;
        h.uncompressed_len = h.n_blocks as u64 * 4096;
        let e = Header::decode(&h.encode(), 3, 1 << 20).unwrap_err();
        assert!(matches!(e, DecodeError::TooLong { .. }), "{e}");
    }

    #[test]
    fn a_block_outside_the_file_is_refused() {
        let h = Header {
            n_blocks: 1,
            uncompressed_len: 100,
            ..header()
        };
        let mut t = Vec::new();
        t.extend_from_slice(&(u64::MAX - 1).to_le_bytes());
        t.extend_from_slice(&100u32.to_le_bytes());
        t.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc32c::crc32c(&t);
        t.extend_from_slice(&crc.to_le_bytes());
        t.extend_from_slice(&[0u8; 4]);
        assert!(decode_table(&t, &h, 1 << 20).is_err());
        for n in 0..t.len() - 4 {
            assert!(decode_table(t.get(..n).unwrap_or_default(), &h, 1 << 20).is_err());
        }
    }
}
