//! The stream index: every stream's head and the position of each of its
//! versions, kept in memory and checkpointed to `streams.ckpt`.

use strata_core::append_rules::StreamHead;
use strata_core::{Position, StreamId};

use crate::format::{u32_at, u64_at};

/// One stream's entry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// Version, deletion state and last position.
    pub head: StreamHead,
    /// `positions[k]` is the position of version `k + 1`.
    pub positions: Vec<u64>,
}

/// All streams.
#[derive(Debug, Default)]
pub struct StreamIndex {
    /// By name.
    pub streams: crate::index::FastMap<StreamId, StreamEntry>,
}

const CKPT_MAGIC: &[u8; 8] = b"STRATASC";
const CKPT_VERSION: u32 = 1;

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

    /// Records a soft delete or tombstone.
    pub fn delete(&mut self, stream: &StreamId, deleted_through: u64, tombstone: bool) {
        let e = self.streams.entry(stream.clone()).or_default();
        if tombstone {
            e.head.tombstoned = true;
        } else {
            e.head.deleted_through = deleted_through;
        }
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
            b.push(e.head.tombstoned as u8);
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
    pub fn decode_checkpoint(b: &[u8]) -> Result<(StreamIndex, (u32, u64)), String> {
        const HEADER: usize = 8 + 4 + 4 + 8 + 8;
        if b.len() < HEADER + 4 {
            return Err("stream checkpoint too short".into());
        }
        let body = &b[..b.len() - 4];
        if crc32c::crc32c(body) != u32_at(b, b.len() - 4) {
            return Err("stream checkpoint checksum mismatch".into());
        }
        if &b[0..8] != CKPT_MAGIC || u32_at(b, 8) != CKPT_VERSION {
            return Err("bad stream checkpoint header".into());
        }
        let covers = (u32_at(b, 12), u64_at(b, 16));
        let n = u64_at(b, 24) as usize;
        let mut streams = crate::index::FastMap::with_capacity_and_hasher(
            n.min(body.len() / 18),
            Default::default(),
        );
        let mut at = HEADER;
        let short = || "stream checkpoint truncated".to_string();
        for _ in 0..n {
            let len = *body.get(at).ok_or_else(short)? as usize;
            let name = body.get(at + 1..at + 1 + len).ok_or_else(short)?;
            let name = std::str::from_utf8(name).map_err(|_| "stream name is not UTF-8")?;
            let id = StreamId::new(name)
                .or_else(|_| StreamId::system(name))
                .map_err(|e| e.to_string())?;
            at += 1 + len;
            let fixed = body.get(at..at + 17).ok_or_else(short)?;
            let deleted_through = u64_at(fixed, 0);
            let tombstoned = fixed[8] != 0;
            let count = u64_at(fixed, 9) as usize;
            at += 17;
            let raw = body
                .get(at..at + count.checked_mul(8).ok_or_else(short)?)
                .ok_or_else(short)?;
            let positions: Vec<u64> = raw.chunks_exact(8).map(|c| u64_at(c, 0)).collect();
            at += count * 8;
            let head = StreamHead {
                version: count as u64,
                deleted_through,
                tombstoned,
                last_position: positions.last().map(|p| Position(*p)),
            };
            streams.insert(id, StreamEntry { head, positions });
        }
        if at != body.len() {
            return Err("stream checkpoint has trailing bytes".into());
        }
        Ok((StreamIndex { streams }, covers))
    }
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
        s.delete(&a, 2, false);
        s.delete(&b, 0, true);
        let enc = s.encode_checkpoint((3, 4096));
        let (d, covers) = StreamIndex::decode_checkpoint(&enc).unwrap();
        assert_eq!(covers, (3, 4096));
        assert_eq!(d.streams, s.streams);
        let mut bad = enc.clone();
        bad[30] ^= 4;
        assert!(StreamIndex::decode_checkpoint(&bad).is_err());
    }
}
