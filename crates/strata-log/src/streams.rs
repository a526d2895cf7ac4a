//! The stream index: every stream's head and the position of each of its
//! versions, kept in memory and checkpointed to `streams.ckpt`; and each
//! stream's current metadata, kept in memory only (rebuilt on open from the
//! metadata streams, see `recovery::metadata`).

#![deny(clippy::indexing_slicing)]

use strata_core::append_rules::StreamHead;
use strata_core::metadata::{erased_metadata_stream, metadata_target};
use strata_core::{Position, StreamId, StreamMetadata};
use tracing::warn;

use crate::decode::{check_crc, DecodeError, Reader};
use crate::format::FrameKind;

/// One stream's entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Version, deletion state and last position.
    pub head: StreamHead,
    /// `positions[k]` is the position of version `k + 1`.
    pub positions: Vec<u64>,
    /// Erased (and so tombstoned too): `$all` no longer shows its events,
    /// and a scavenge removes their data.
    pub erased: bool,
}

/// What a delete frame does to its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteKind {
    /// A soft delete: stream reads start after it; appends go on.
    Soft,
    /// A tombstone: nothing is read from or written to the stream again.
    Tombstone,
    /// An erasure: a tombstone that also hides the events from `$all` and
    /// lets a scavenge remove their data.
    Erase,
}

impl DeleteKind {
    /// The kind of frame that records it.
    pub fn frame_kind(self) -> FrameKind {
        match self {
            DeleteKind::Soft => FrameKind::Delete,
            DeleteKind::Tombstone => FrameKind::Tombstone,
            DeleteKind::Erase => FrameKind::Erase,
        }
    }

    /// The deletion a frame of `kind` records, if it records one.
    pub fn of_frame(kind: FrameKind) -> Option<Self> {
        match kind {
            FrameKind::Delete => Some(DeleteKind::Soft),
            FrameKind::Tombstone => Some(DeleteKind::Tombstone),
            FrameKind::Erase => Some(DeleteKind::Erase),
            FrameKind::Append | FrameKind::Gap => None,
        }
    }
}

/// All streams.
#[derive(Debug, Default)]
pub struct StreamIndex {
    /// By name.
    pub streams: crate::index::FastMap<StreamId, StreamEntry>,
    /// Each stream's current metadata (the latest event of its metadata
    /// stream `$$NAME`), by the stream it applies to, which need not exist.
    /// Not part of the checkpoint.
    pub metadata: crate::index::FastMap<StreamId, StreamMetadata>,
    /// How many streams are erased (reads of `$all` check each stream they
    /// meet only when some is).
    pub erased: usize,
}

/// File name of the stream index checkpoint.
pub const STREAM_CHECKPOINT_FILE: &str = "streams.ckpt";

const CKPT_MAGIC: &[u8; 8] = b"STRATASC";
const CKPT_VERSION: u32 = 1;
/// Magic, version, covered segment and offset, stream count.
const CKPT_HEADER_BYTES: usize = 8 + 4 + 4 + 8 + 8;
/// The fewest bytes one stream takes: name length, deleted-through,
/// tombstone flag, position count.
const CKPT_MIN_STREAM_BYTES: usize = 1 + 8 + 1 + 8;
/// The tombstone flag of an erased stream (0: not tombstoned, 1:
/// tombstoned). Any non-zero value means tombstoned.
const CKPT_ERASED: u8 = 2;

impl StreamIndex {
    /// Records an event at `version` of `stream`.
    pub fn add_event(&mut self, stream: &StreamId, version: u64, position: u64) {
        let e = match self.streams.get_mut(stream.as_str()) {
            Some(e) => e,
            None => self.streams.entry(stream.clone()).or_default(),
        };
        debug_assert_eq!(version, e.head.version + 1, "versions must be contiguous");
        e.positions.push(position);
        e.head.version = version;
        e.head.last_position = Some(Position(position));
    }

    /// Records the versions of `stream` after its head, up to `through`, as
    /// lost in damaged bytes at `position` (a store opened read-only over
    /// damage): a read of them reports the damage.
    pub fn add_lost(&mut self, stream: &StreamId, through: u64, position: u64) {
        let e = self.streams.entry(stream.clone()).or_default();
        while e.head.version < through {
            e.positions.push(position);
            e.head.version += 1;
        }
    }

    /// Records a soft delete, tombstone or erasure.
    pub fn delete(&mut self, stream: &StreamId, deleted_through: u64, kind: DeleteKind) {
        let e = self.streams.entry(stream.clone()).or_default();
        match kind {
            DeleteKind::Soft => e.head.deleted_through = deleted_through,
            DeleteKind::Tombstone => e.head.tombstoned = true,
            DeleteKind::Erase => {
                e.head.tombstoned = true;
                if !e.erased {
                    e.erased = true;
                    self.erased += 1;
                }
            }
        }
    }

    /// Records what a delete frame of `stream` does: [`delete`](Self::delete),
    /// and for an erasure the same to the metadata stream it erases with
    /// it ([`erased_metadata_stream`]), whose settings then govern nothing.
    /// The frame does not carry that stream's version: replayed without a
    /// checkpoint after a scavenge removed its events, its head may stop
    /// short of it (nothing can be written to it again either way).
    pub fn record_delete(&mut self, stream: &StreamId, deleted_through: u64, kind: DeleteKind) {
        self.delete(stream, deleted_through, kind);
        if kind != DeleteKind::Erase {
            return;
        }
        if let Some(meta) = erased_metadata_stream(stream) {
            self.delete(&meta, 0, DeleteKind::Erase);
            self.metadata.remove(stream);
        }
    }

    /// Keeps the settings an event of metadata stream `stream` (`$$NAME`)
    /// holds, as the metadata of `NAME`: the latest event of a metadata
    /// stream is its stream's metadata. Data that is not valid metadata
    /// (never written through the store's checks) leaves `NAME` with none.
    /// Events of other streams are ignored.
    pub fn note_metadata(&mut self, stream: &str, data: &[u8]) {
        let Some(target) = metadata_target(stream) else {
            return;
        };
        let Ok(target) = StreamId::new(target).or_else(|_| StreamId::system(target)) else {
            return;
        };
        match StreamMetadata::from_json(data) {
            Ok(m) => {
                self.metadata.insert(target, m);
            }
            Err(e) => {
                warn!(stream, reason = %e, "a metadata stream's latest event is not valid stream metadata; the stream has none");
                self.metadata.remove(target.as_str());
            }
        }
    }

    /// Sets the metadata of `target` (checked already).
    pub fn set_metadata(&mut self, target: StreamId, metadata: StreamMetadata) {
        self.metadata.insert(target, metadata);
    }

    /// Encodes the checkpoint: the stream table as of `covers` (every frame
    /// that ends at or before that log location is included).
    pub fn encode_checkpoint(&self, covers: (u32, u64)) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.streams.len() * 64);
        b.extend_from_slice(CKPT_MAGIC);
        b.extend_from_slice(&CKPT_VERSION.to_le_bytes());
        b.extend_from_slice(&covers.0.to_le_bytes());
        b.extend_from_slice(&covers.1.to_le_bytes());
        b.extend_from_slice(&(self.streams.len() as u64).to_le_bytes());
        for (id, e) in &self.streams {
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
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
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
        let mut streams = crate::index::FastMap::with_capacity_and_hasher(n, Default::default());
        for _ in 0..n {
            let (id, entry) = decode_stream(&mut r)?;
            if streams.contains_key(&id) {
                return Err(DecodeError::invalid(
                    "stream checkpoint",
                    format!("stream {id} appears twice in the stream checkpoint"),
                ));
            }
            streams.insert(id, entry);
        }
        if !r.is_empty() {
            return Err(DecodeError::invalid(
                "stream checkpoint",
                "stream checkpoint has trailing bytes",
            ));
        }
        let metadata = crate::index::FastMap::default();
        let erased = streams.values().filter(|e| e.erased).count();
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
    let id = StreamId::new(name)
        .or_else(|_| StreamId::system(name))
        .map_err(|e| DecodeError::invalid("stream name", e.to_string()))?;
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
