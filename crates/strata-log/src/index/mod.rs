//! Per-segment indexes: event id → position, and event type, category and
//! correlation id → positions, plus every frame's offset.
//!
//! The active segment's index lives in hash maps ([`ActiveIndex`]). When a
//! segment is sealed its index is frozen into sorted arrays ([`SealedIndex`])
//! and written to `index/NNNNNNNN.idx`, so opening a store never re-reads
//! sealed segments. Keys are 64-bit FNV-1a hashes of the strings; a hash
//! collision only costs an extra read, because every candidate event is read
//! and matched against the real filter.

mod file;
pub mod filter;
pub(crate) mod tags;

use std::collections::HashMap;

pub use file::{Frozen, IndexFileError, Postings, SealedIndex, INDEX_CHUNK_ENTRIES};

/// Hash maps of the hot path: foldhash is several times faster than SipHash
/// on these short keys, and still seeded per map.
pub type FastMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

/// Stable 64-bit FNV-1a hash of a key (persisted: never change it).
pub fn key_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
    pub ids: FastMap<u128, u64>,
    /// Posting lists by kind, then key hash; positions ascending.
    pub postings: [FastMap<u64, Vec<u64>>; 3],
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

    /// Freezes into sorted arrays, ready to be written as an index file.
    pub fn freeze(&self) -> Frozen {
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
        Frozen {
            ids,
            postings,
            frames: self.frames.clone(),
        }
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
