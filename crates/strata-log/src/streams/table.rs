//! The stream table: every stream's entry, by name, split into
//! [`STREAM_SHARDS`] hash maps.
//!
//! The split serves two ends. A checkpoint can be encoded one shard at a
//! time, each under a short read lock, so the writer never waits for a
//! whole table's encoding. And a shard that outgrows its map rehashes only
//! its own entries: with ten million streams one growth step moves tens of
//! thousands of entries, not millions, so no append waits for a rehash of
//! the whole table.

use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use strata_core::StreamId;

use crate::index::FastMap;
use crate::streams::StreamEntry;

/// How many shards the table has (a power of two).
pub const STREAM_SHARDS: usize = 256;

/// Every stream's entry, by name.
#[derive(Debug, Clone)]
pub struct StreamTable {
    /// Picks a name's shard; seeded per table, so names cannot be chosen to
    /// crowd one shard.
    shard_of: foldhash::fast::RandomState,
    shards: Box<[FastMap<StreamId, StreamEntry>]>,
}

impl Default for StreamTable {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl PartialEq for StreamTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k.as_str()) == Some(v))
    }
}

impl Eq for StreamTable {}

impl StreamTable {
    /// An empty table with room for about `n` streams.
    pub fn with_capacity(n: usize) -> Self {
        let per_shard = n.div_ceil(STREAM_SHARDS);
        StreamTable {
            shard_of: foldhash::fast::RandomState::default(),
            shards: (0..STREAM_SHARDS)
                .map(|_| FastMap::with_capacity_and_hasher(per_shard, Default::default()))
                .collect(),
        }
    }

    fn shard_index(&self, name: &str) -> usize {
        // The top bits: the shard's own map uses the hash's low bits too,
        // but with a seed of its own.
        (self.shard_of.hash_one(name) >> 56) as usize % STREAM_SHARDS
    }

    // `shard_index` is below STREAM_SHARDS, the slice's length.
    #[allow(clippy::indexing_slicing)]
    fn shard(&self, name: &str) -> &FastMap<StreamId, StreamEntry> {
        let i = self.shard_index(name);
        &self.shards[i]
    }

    #[allow(clippy::indexing_slicing)]
    fn shard_mut(&mut self, name: &str) -> &mut FastMap<StreamId, StreamEntry> {
        let i = self.shard_index(name);
        &mut self.shards[i]
    }

    /// The entry of stream `name`.
    pub fn get(&self, name: &str) -> Option<&StreamEntry> {
        self.shard(name).get(name)
    }

    /// The entry of stream `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut StreamEntry> {
        self.shard_mut(name).get_mut(name)
    }

    /// Whether stream `name` has an entry.
    pub fn contains_key(&self, name: &str) -> bool {
        self.shard(name).contains_key(name)
    }

    /// The entry of `id`, to fill or change.
    pub fn entry(&mut self, id: StreamId) -> Entry<'_, StreamId, StreamEntry> {
        self.shard_mut(id.as_str()).entry(id)
    }

    /// Sets the entry of `id`; returns the one it replaces.
    pub fn insert(&mut self, id: StreamId, entry: StreamEntry) -> Option<StreamEntry> {
        self.shard_mut(id.as_str()).insert(id, entry)
    }

    /// How many streams have entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether no stream has an entry.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// Every stream and its entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&StreamId, &StreamEntry)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Every stream name, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &StreamId> {
        self.shards.iter().flat_map(|s| s.keys())
    }

    /// Every entry, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &StreamEntry> {
        self.shards.iter().flat_map(|s| s.values())
    }

    /// The streams of shard `i` (below [`STREAM_SHARDS`]; none otherwise).
    pub fn shard_entries(&self, i: usize) -> impl Iterator<Item = (&StreamId, &StreamEntry)> {
        self.shards.get(i).into_iter().flat_map(|s| s.iter())
    }
}

impl<'a> IntoIterator for &'a StreamTable {
    type Item = (&'a StreamId, &'a StreamEntry);
    type IntoIter = Box<dyn Iterator<Item = (&'a StreamId, &'a StreamEntry)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn finds_every_stream_it_holds_and_iterates_each_once() {
        let mut t = StreamTable::default();
        for i in 0..2_000u64 {
            let id = StreamId::new(format!("s-{i}")).unwrap();
            t.entry(id).or_default().head.version = i;
        }
        assert_eq!(t.len(), 2_000);
        assert!(!t.is_empty());
        assert!(
            t.shards.iter().filter(|s| !s.is_empty()).count() > STREAM_SHARDS / 2,
            "names spread over the shards"
        );
        for i in 0..2_000u64 {
            assert_eq!(t.get(&format!("s-{i}")).unwrap().head.version, i);
        }
        assert!(t.get("s-2000").is_none());
        let mut seen: Vec<u64> = t.values().map(|e| e.head.version).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2_000).collect::<Vec<_>>());
        let by_shard: usize = (0..STREAM_SHARDS).map(|i| t.shard_entries(i).count()).sum();
        assert_eq!(by_shard, 2_000);
        assert_eq!(t.shard_entries(STREAM_SHARDS).count(), 0);
        let mut other = StreamTable::with_capacity(2_000);
        for (k, v) in &t {
            other.insert(k.clone(), v.clone());
        }
        assert_eq!(other, t, "equal whatever the shard seeds");
        other.get_mut("s-7").unwrap().head.version = 99;
        assert_ne!(other, t);
    }
}
