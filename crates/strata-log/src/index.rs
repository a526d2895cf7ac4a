//! Per-segment indexes: event id → position, and event type, category and
//! correlation id → positions, plus every frame's offset.
//!
//! The active segment's index lives in hash maps ([`ActiveIndex`]). When a
//! segment is sealed its index is frozen into sorted arrays ([`SealedIndex`])
//! and written to `index/NNNNNNNN.idx`, so opening a store never re-reads
//! sealed segments. Keys are 64-bit FNV-1a hashes of the strings; a hash
//! collision only costs an extra read, because every candidate event is read
//! and matched against the real filter.

use std::collections::HashMap;

use crate::format::{u32_at, u64_at};

/// Stable 64-bit FNV-1a hash of a key (persisted: never change it).
pub fn key_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Which posting list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Postings {
    /// By event type.
    Type = 0,
    /// By stream category.
    Category = 1,
    /// By correlation id.
    Correlation = 2,
}

/// What one event contributes to the indexes.
#[derive(Clone, Copy, Debug)]
pub struct IndexEntry {
    /// Event id as a u128.
    pub id: u128,
    /// Its position.
    pub position: u64,
    /// Hash of its type.
    pub type_hash: u64,
    /// Hash of its stream's category.
    pub category_hash: u64,
    /// Hash of its correlation id, if it has one.
    pub correlation_hash: Option<u64>,
}

/// The index of the segment being written.
#[derive(Default, Debug)]
pub struct ActiveIndex {
    /// Event id → position.
    pub ids: HashMap<u128, u64>,
    /// Posting lists by kind, then key hash; positions ascending.
    pub postings: [HashMap<u64, Vec<u64>>; 3],
    /// Offsets (inside the segment) of every frame, ascending.
    pub frames: Vec<u64>,
    /// Number of events.
    pub events: u64,
}

impl ActiveIndex {
    /// Records one event.
    pub fn add(&mut self, e: &IndexEntry) {
        self.ids.insert(e.id, e.position);
        self.postings[Postings::Type as usize]
            .entry(e.type_hash)
            .or_default()
            .push(e.position);
        self.postings[Postings::Category as usize]
            .entry(e.category_hash)
            .or_default()
            .push(e.position);
        if let Some(c) = e.correlation_hash {
            self.postings[Postings::Correlation as usize]
                .entry(c)
                .or_default()
                .push(e.position);
        }
        self.events += 1;
    }

    /// Records a frame start.
    pub fn add_frame(&mut self, offset: u64) {
        self.frames.push(offset);
    }

    /// Freezes into sorted arrays.
    pub fn seal(&self) -> SealedIndex {
        let mut ids: Vec<(u128, u64)> = self.ids.iter().map(|(k, v)| (*k, *v)).collect();
        ids.sort_unstable();
        let postings = [0, 1, 2].map(|k| {
            let mut v: Vec<(u64, u64)> = self.postings[k]
                .iter()
                .flat_map(|(h, ps)| ps.iter().map(move |p| (*h, *p)))
                .collect();
            v.sort_unstable();
            v
        });
        SealedIndex {
            ids,
            postings,
            frames: self.frames.clone(),
        }
    }
}

/// The frozen index of a sealed segment.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SealedIndex {
    /// (id, position), sorted by id.
    pub ids: Vec<(u128, u64)>,
    /// (key hash, position), sorted, per posting kind.
    pub postings: [Vec<(u64, u64)>; 3],
    /// Offsets of every frame, ascending.
    pub frames: Vec<u64>,
}

const IDX_MAGIC: &[u8; 8] = b"STRATAIX";
const IDX_VERSION: u32 = 1;

impl SealedIndex {
    /// Position of an event id.
    pub fn lookup_id(&self, id: u128) -> Option<u64> {
        self.ids
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .map(|i| self.ids[i].1)
    }

    /// Positions `>= from` under `key` in posting list `kind`.
    pub fn postings_from(&self, kind: Postings, key: u64, from: u64) -> &[(u64, u64)] {
        let v = &self.postings[kind as usize];
        let lo = v.partition_point(|e| (e.0, e.1) < (key, from));
        let hi = v.partition_point(|e| e.0 <= key);
        &v[lo..hi.max(lo)]
    }

    /// Encodes the index file: header, sections, footer with a checksum.
    pub fn encode(&self, segment: u32) -> Vec<u8> {
        let mut b = Vec::with_capacity(
            64 + self.ids.len() * 24 + self.postings.iter().map(|p| p.len() * 16).sum::<usize>(),
        );
        b.extend_from_slice(IDX_MAGIC);
        b.extend_from_slice(&IDX_VERSION.to_le_bytes());
        b.extend_from_slice(&segment.to_le_bytes());
        b.extend_from_slice(&(self.ids.len() as u64).to_le_bytes());
        for p in &self.postings {
            b.extend_from_slice(&(p.len() as u64).to_le_bytes());
        }
        b.extend_from_slice(&(self.frames.len() as u64).to_le_bytes());
        for (id, pos) in &self.ids {
            b.extend_from_slice(&id.to_le_bytes());
            b.extend_from_slice(&pos.to_le_bytes());
        }
        for p in &self.postings {
            for (h, pos) in p {
                b.extend_from_slice(&h.to_le_bytes());
                b.extend_from_slice(&pos.to_le_bytes());
            }
        }
        for f in &self.frames {
            b.extend_from_slice(&f.to_le_bytes());
        }
        let crc = crc32c::crc32c(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and checks an index file for `segment`.
    pub fn decode(b: &[u8], segment: u32) -> Result<Self, String> {
        const HEADER: usize = 8 + 4 + 4 + 8 * 5;
        if b.len() < HEADER + 4 {
            return Err("index file too short".into());
        }
        let body = &b[..b.len() - 4];
        if crc32c::crc32c(body) != u32_at(b, b.len() - 4) {
            return Err("index file checksum mismatch".into());
        }
        if &b[0..8] != IDX_MAGIC {
            return Err("bad index magic".into());
        }
        if u32_at(b, 8) != IDX_VERSION {
            return Err(format!(
                "index version {}, expected {IDX_VERSION}",
                u32_at(b, 8)
            ));
        }
        if u32_at(b, 12) != segment {
            return Err(format!(
                "index names segment {}, expected {segment}",
                u32_at(b, 12)
            ));
        }
        let n_ids = u64_at(b, 16) as usize;
        let n_post = [
            u64_at(b, 24) as usize,
            u64_at(b, 32) as usize,
            u64_at(b, 40) as usize,
        ];
        let n_frames = u64_at(b, 48) as usize;
        let need = n_ids
            .checked_mul(24)
            .and_then(|x| x.checked_add(n_post.iter().sum::<usize>().checked_mul(16)?))
            .and_then(|x| x.checked_add(n_frames.checked_mul(8)?))
            .and_then(|x| x.checked_add(HEADER))
            .ok_or("index counts overflow")?;
        if need != body.len() {
            return Err("index section sizes do not match the file".into());
        }
        let mut at = HEADER;
        let mut ids = Vec::with_capacity(n_ids);
        for _ in 0..n_ids {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[at..at + 16]);
            ids.push((u128::from_le_bytes(a), u64_at(b, at + 16)));
            at += 24;
        }
        let mut postings: [Vec<(u64, u64)>; 3] = Default::default();
        for (k, n) in n_post.iter().enumerate() {
            let mut v = Vec::with_capacity(*n);
            for _ in 0..*n {
                v.push((u64_at(b, at), u64_at(b, at + 8)));
                at += 16;
            }
            postings[k] = v;
        }
        let mut frames = Vec::with_capacity(n_frames);
        for _ in 0..n_frames {
            frames.push(u64_at(b, at));
            at += 8;
        }
        Ok(SealedIndex {
            ids,
            postings,
            frames,
        })
    }
}

/// Positions `>= from` under `key` from an active posting list.
pub fn active_postings_from(idx: &ActiveIndex, kind: Postings, key: u64, from: u64) -> &[u64] {
    match idx.postings[kind as usize].get(&key) {
        Some(v) => {
            let lo = v.partition_point(|p| *p < from);
            &v[lo..]
        }
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_roundtrip_and_lookup() {
        let mut a = ActiveIndex::default();
        for i in 0..100u64 {
            a.add(&IndexEntry {
                id: (i as u128) * 7919,
                position: 100 + i * 10,
                type_hash: i % 3,
                category_hash: 9,
                correlation_hash: if i % 2 == 0 { Some(5) } else { None },
            });
            a.add_frame(100 + i * 10);
        }
        let s = a.seal();
        let enc = s.encode(4);
        let d = SealedIndex::decode(&enc, 4).unwrap();
        assert_eq!(d, s);
        assert!(SealedIndex::decode(&enc, 5).is_err());
        let mut bad = enc.clone();
        bad[70] ^= 1;
        assert!(SealedIndex::decode(&bad, 4).is_err());
        assert_eq!(d.lookup_id(7919 * 42), Some(100 + 420));
        assert_eq!(d.lookup_id(1), None);
        let p = d.postings_from(Postings::Type, 1, 500);
        assert!(p.iter().all(|e| e.0 == 1 && e.1 >= 500));
        assert_eq!(p.len(), (40..100).filter(|i| i % 3 == 1).count());
        assert_eq!(d.postings_from(Postings::Correlation, 5, 0).len(), 50);
        assert_eq!(active_postings_from(&a, Postings::Type, 2, 0).len(), 33);
    }
}
