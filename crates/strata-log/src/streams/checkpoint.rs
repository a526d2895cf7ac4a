//! The stream checkpoint (`streams.ckpt`): the stream table as of a log
//! location, so that opening a store replays only the log after it.
//!
//! ```text
//! header (32 bytes)  magic "STRATASC", version u32, covered segment u32
//!                    and offset u64, stream count u64
//! streams            each: name length u8 and its bytes, deleted-through
//!                    u64, flag u8 (0 live, 1 tombstoned, 2 erased),
//!                    position count u64, positions u64 each
//! trailer (4 bytes)  crc32c of everything before it
//! ```
//!
//! A checkpoint may be *fuzzy*: it is encoded one shard of the table at a
//! time ([`CheckpointEncoder`]), each under a short read lock, while the
//! writer goes on publishing. Every stream then holds at least what the log
//! up to the covered location holds, and perhaps later events (published,
//! so synced) as well. Replay after it skips what a stream already holds:
//! an event at or below its head's position, and a soft delete through no
//! more than its own.

use strata_core::append_rules::StreamHead;
use strata_core::{Position, StreamId};

use crate::decode::{check_crc, DecodeError, Reader};
use crate::streams::{StreamEntry, StreamIndex, StreamTable, STREAM_SHARDS};

/// File name of the stream index checkpoint.
pub const STREAM_CHECKPOINT_FILE: &str = "streams.ckpt";

const CKPT_MAGIC: &[u8; 8] = b"STRATASC";
const CKPT_VERSION: u32 = 1;
/// Magic, version, covered segment and offset, stream count.
const CKPT_HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 8;
/// Where the stream count sits in the header.
const CKPT_COUNT_AT: usize = CKPT_HEADER_BYTES - 8;
/// The fewest bytes one stream takes: name length, deleted-through,
/// tombstone flag, position count.
const CKPT_MIN_STREAM_BYTES: usize = 1 + 8 + 1 + 8;
/// The tombstone flag of an erased stream (0: not tombstoned, 1:
/// tombstoned). Any non-zero value means tombstoned.
const CKPT_ERASED: u8 = 2;

/// Encodes a checkpoint one shard of the stream table at a time.
#[derive(Debug)]
pub struct CheckpointEncoder {
    bytes: Vec<u8>,
    count: u64,
    shards_done: usize,
}

impl CheckpointEncoder {
    /// Starts a checkpoint covering the log up to `covers` (segment,
    /// offset): every frame that ends at or before it must be in each shard
    /// added.
    pub fn new(covers: (u32, u64)) -> Self {
        let mut b = Vec::with_capacity(4096);
        b.extend_from_slice(CKPT_MAGIC);
        b.extend_from_slice(&CKPT_VERSION.to_le_bytes());
        b.extend_from_slice(&covers.0.to_le_bytes());
        b.extend_from_slice(&covers.1.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        CheckpointEncoder {
            bytes: b,
            count: 0,
            shards_done: 0,
        }
    }

    /// The next shard to add, or `None` once every shard is in.
    pub fn next_shard(&self) -> Option<usize> {
        (self.shards_done < STREAM_SHARDS).then_some(self.shards_done)
    }

    /// Adds the next shard of `index`'s table.
    pub fn add_next_shard(&mut self, index: &StreamIndex) {
        let Some(shard) = self.next_shard() else {
            return;
        };
        for (id, e) in index.streams.shard_entries(shard) {
            encode_stream(&mut self.bytes, id, e);
            self.count += 1;
        }
        self.shards_done += 1;
    }

    /// The finished checkpoint. Shards not added are missing from it: add
    /// them all first.
    pub fn finish(mut self) -> Vec<u8> {
        debug_assert!(self.next_shard().is_none(), "every shard is added");
        if let Some(count) = self.bytes.get_mut(CKPT_COUNT_AT..CKPT_HEADER_BYTES) {
            count.copy_from_slice(&self.count.to_le_bytes());
        }
        let crc = crc32c::crc32c(&self.bytes);
        self.bytes.extend_from_slice(&crc.to_le_bytes());
        self.bytes
    }
}

/// Appends one stream's bytes.
fn encode_stream(b: &mut Vec<u8>, id: &StreamId, e: &StreamEntry) {
    b.push(id.as_str().len() as u8);
    b.extend_from_slice(id.as_str().as_bytes());
    b.extend_from_slice(&e.head.deleted_through.to_le_bytes());
    b.push(if e.erased {
        CKPT_ERASED
    } else {
        u8::from(e.head.tombstoned)
    });
    b.extend_from_slice(&(e.positions.len() as u64).to_le_bytes());
    for p in &e.positions {
        b.extend_from_slice(&p.to_le_bytes());
    }
}

impl StreamIndex {
    /// Encodes the checkpoint: the stream table as of `covers` (every frame
    /// that ends at or before that log location is included), all at once.
    pub fn encode_checkpoint(&self, covers: (u32, u64)) -> Vec<u8> {
        let mut enc = CheckpointEncoder::new(covers);
        while enc.next_shard().is_some() {
            enc.add_next_shard(self);
        }
        enc.finish()
    }

    /// Decodes a checkpoint; returns the index and the log location it covers.
    pub fn decode_checkpoint(b: &[u8]) -> Result<(StreamIndex, (u32, u64)), DecodeError> {
        let body_len = b.len().checked_sub(4).ok_or(DecodeError::Truncated {
            what: "stream checkpoint",
            need: CKPT_HEADER_BYTES + 4,
            have: b.len(),
        })?;
        let mut r = Reader::new(b);
        let body = r.bytes(body_len, "stream checkpoint")?;
        check_crc(
            body,
            r.u32("stream checkpoint checksum")?,
            "stream checkpoint",
        )?;
        let mut r = Reader::new(body);
        if r.array::<8>("stream checkpoint magic")? != *CKPT_MAGIC
            || r.u32("stream checkpoint version")? != CKPT_VERSION
        {
            return Err(DecodeError::invalid(
                "stream checkpoint header",
                "bad stream checkpoint header",
            ));
        }
        let covers = (r.u32("checkpoint segment")?, r.u64("checkpoint offset")?);
        // Each stream takes at least 18 bytes: the count cannot outrun them.
        let n = r.len_u64(r.remaining() / CKPT_MIN_STREAM_BYTES, "stream count")?;
        let mut streams = StreamTable::with_capacity(n);
        let mut erased = 0;
        for _ in 0..n {
            let (id, entry) = decode_stream(&mut r)?;
            erased += usize::from(entry.erased);
            if let Some(_twice) = streams.insert(id.clone(), entry) {
                return Err(DecodeError::invalid(
                    "stream checkpoint",
                    format!("stream {id} appears twice in the stream checkpoint"),
                ));
            }
        }
        if !r.is_empty() {
            return Err(DecodeError::invalid(
                "stream checkpoint",
                "stream checkpoint has trailing bytes",
            ));
        }
        let metadata = crate::index::FastMap::default();
        Ok((
            StreamIndex {
                streams,
                metadata,
                erased,
            },
            covers,
        ))
    }
}

/// One stream of a checkpoint: name, deletion state and positions.
fn decode_stream(r: &mut Reader<'_>) -> Result<(StreamId, StreamEntry), DecodeError> {
    let len = r.u8("stream name length")?;
    let name = r.str(usize::from(len), "stream name")?;
    let id = StreamId::any(name).map_err(|e| DecodeError::invalid("stream name", e.to_string()))?;
    let deleted_through = r.u64("deleted through")?;
    let flag = r.u8("tombstoned")?;
    let (tombstoned, erased) = (flag != 0, flag == CKPT_ERASED);
    // The positions must be present before they are allocated.
    let count = r.len_u64(r.remaining() / 8, "position count")?;
    let mut positions = Vec::with_capacity(count);
    for _ in 0..count {
        positions.push(r.u64("position")?);
    }
    let head = StreamHead {
        version: count as u64,
        deleted_through,
        tombstoned,
        last_position: positions.last().map(|p| Position(*p)),
    };
    Ok((
        id,
        StreamEntry {
            head,
            positions,
            erased,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::DeleteKind;

    #[test]
    fn checkpoint_roundtrip() {
        let mut s = StreamIndex::default();
        let a = StreamId::new("a-1").unwrap();
        let b = StreamId::new("b-2").unwrap();
        s.add_event(&a, 1, 40);
        s.add_event(&a, 2, 90);
        s.add_event(&b, 1, 140);
        let c = StreamId::new("c-3").unwrap();
        s.add_event(&c, 1, 180);
        s.delete(&a, 2, DeleteKind::Soft);
        s.delete(&b, 0, DeleteKind::Tombstone);
        s.delete(&c, 1, DeleteKind::Erase);
        s.delete(&c, 1, DeleteKind::Erase);
        assert_eq!(s.erased, 1);
        let e = StreamId::new("e-5").unwrap();
        s.add_event(&e, 1, 220);
        s.record_delete(&e, 1, DeleteKind::Erase);
        assert_eq!(s.erased, 3, "e-5 and $$e-5");
        assert!(s.streams.get("$$e-5").unwrap().head.tombstoned);
        let enc = s.encode_checkpoint((3, 4096));
        let (d, covers) = StreamIndex::decode_checkpoint(&enc).unwrap();
        assert_eq!(covers, (3, 4096));
        assert_eq!(d.streams, s.streams);
        assert_eq!(d.erased, 3);
        let c3 = d.streams.get("c-3").unwrap();
        assert!(c3.erased && c3.head.tombstoned);
        let mut bad = enc.clone();
        if let Some(b) = bad.get_mut(30) {
            *b ^= 4;
        }
        assert!(StreamIndex::decode_checkpoint(&bad).is_err());
    }

    #[test]
    #[allow(clippy::indexing_slicing)]
    fn a_stream_listed_twice_is_refused() {
        let mut s = StreamIndex::default();
        s.add_event(&StreamId::new("a-1").unwrap(), 1, 40);
        let enc = s.encode_checkpoint((0, 100));
        // The one stream's bytes, repeated, with the count and checksum fixed.
        let body = &enc[..enc.len() - 4];
        let mut twice = body.to_vec();
        twice.extend_from_slice(&body[CKPT_HEADER_BYTES..]);
        twice[CKPT_HEADER_BYTES - 8..CKPT_HEADER_BYTES].copy_from_slice(&2u64.to_le_bytes());
        let crc = crc32c::crc32c(&twice);
        twice.extend_from_slice(&crc.to_le_bytes());
        let e = StreamIndex::decode_checkpoint(&twice).unwrap_err();
        assert!(matches!(e, DecodeError::Invalid { .. }), "{e}");
    }

    #[test]
    fn every_truncation_and_flip_is_a_typed_error() {
        let mut s = StreamIndex::default();
        let a = StreamId::new("a-1").unwrap();
        s.add_event(&a, 1, 40);
        s.add_event(&a, 2, 90);
        let enc = s.encode_checkpoint((0, 100));
        for n in 0..enc.len() {
            assert!(
                StreamIndex::decode_checkpoint(enc.get(..n).unwrap()).is_err(),
                "{n}"
            );
        }
        for i in 0..enc.len() {
            let mut b = enc.clone();
            if let Some(x) = b.get_mut(i) {
                *x ^= 0x08;
            }
            assert!(StreamIndex::decode_checkpoint(&b).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn a_huge_count_is_refused_before_allocation() {
        // A well-checksummed checkpoint that claims u64::MAX streams.
        let mut b = Vec::new();
        b.extend_from_slice(CKPT_MAGIC);
        b.extend_from_slice(&CKPT_VERSION.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&u64::MAX.to_le_bytes());
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            StreamIndex::decode_checkpoint(&b),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
