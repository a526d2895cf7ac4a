//! Entry points for fuzzing the decoders of on-disk bytes. Not part of the
//! API: the fuzz targets (`fuzz/` at the repository root) and the corpus
//! replay test of `strata-integration` call these same functions.
//!
//! Every entry point takes arbitrary bytes and is total: it never panics on
//! any input. It panics only when a decoder breaks its own contract (a value
//! that decodes does not re-encode to itself, or two decoders disagree),
//! which is what a fuzzer reports. Each returns whether the input decoded
//! as a whole, so seed files can be checked to be valid encodings.
//!
//! Checksums would stop a fuzzer at the first field it mutates, so each
//! entry point also decodes a copy of its input with the checksums
//! recomputed, to reach the decoding behind them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod compressed;
mod index;
mod mem;
mod segment;
mod streams;

pub use compressed::compressed_segment;
pub use index::index_file;
pub(crate) use mem::MemFile;
pub use segment::{record, segment};
pub use streams::stream_checkpoint;

/// A snapshot file: scanned as opening the snapshot store does, and again
/// with the checksums of its header and first record recomputed; every
/// record the scan accepts must re-encode to its own bytes. Returns whether
/// the header and every record decoded, with no damage and no torn tail.
pub fn snapshot_file(data: &[u8]) -> bool {
    crate::snapshot::fuzz::file(data)
}

/// The checkpoint file: replayed as opening the checkpoint store does, and
/// again with the checksums of its header and first record recomputed;
/// every record that decodes must re-encode to its own bytes. Returns
/// whether the header and every record decoded.
pub fn checkpoint_file(data: &[u8]) -> bool {
    crate::checkpoint::fuzz::file(data)
}

/// Valid encodings made by the real encoders, one per target and case:
/// `(target, case name, bytes)`. The seed corpus of `fuzz/corpus/` is
/// written from these.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    out.extend(segment::seeds());
    out.extend(index::seeds());
    out.extend(compressed::seeds());
    out.extend(crate::snapshot::fuzz::seeds());
    out.extend(crate::checkpoint::fuzz::seeds());
    out.extend(streams::seeds());
    out
}

/// Reads a little-endian `u32` at `at`, or 0 past the end.
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// Writes the CRC-32C of `b[covered]` at `at`, if those bytes are there.
pub(crate) fn put_crc<R>(b: &mut [u8], covered: R, at: usize)
where
    R: std::slice::SliceIndex<[u8], Output = [u8]>,
{
    if let Some(c) = b.get(covered) {
        let crc = crc32c::crc32c(c);
        put_u32(b, at, crc);
    }
}

/// Writes `v` little-endian at `at` if the bytes are there.
pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = b.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}
