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
    /// Whether the store generated the id (UUID v7, ascending as events
    /// arrive), so it may join the active index's sorted id list; a
    /// caller's own id (any version, any clock) goes to the hash map, so it
    /// cannot push the store's later ids out of the list. An index rebuilt
    /// from records cannot tell and sets it: arrival order alone then
    /// decides, which is still correct.
    pub store_made: bool,
}

/// The index of the segment being written.
///
/// Built for the writer's publish step, which adds a whole frame at a time
/// ([`add_run`](Self::add_run)): ids the store generated arrive ascending
/// (UUID v7, time-ordered) and are appended to a sorted vector instead of
/// hashed; posting lists take each run of events with the same key with
/// one map lookup.
#[derive(Default, Debug)]
pub struct ActiveIndex {
    /// Event id → position, for ids that arrived out of order (chosen by
    /// callers).
    pub ids: FastMap<u128, u64>,
    /// (event id, position) of the ids that arrived ascending, sorted by
    /// id; no id is in both this and `ids`.
    pub ordered_ids: Vec<(u128, u64)>,
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
        self.add_run(std::slice::from_ref(e));
    }

    /// Records the events of one frame (or any run of events), in position
    /// order: one map lookup per run of equal keys rather than per event.
    pub fn add_run(&mut self, entries: &[IndexEntry]) {
        for e in entries {
            self.add_id(e);
        }
        self.add_postings(Postings::Type, entries, |e| Some(e.type_hash));
        self.add_postings(Postings::Category, entries, |e| Some(e.category_hash));
        self.add_postings(Postings::Correlation, entries, |e| e.correlation_hash);
        self.events += entries.len() as u64;
    }

    /// Records where event `e.id` is: at the end of the sorted list when
    /// the store made it and it is above every id there, else in the map.
    fn add_id(&mut self, e: &IndexEntry) {
        let ascending = self.ordered_ids.last().is_none_or(|(last, _)| *last < e.id);
        if e.store_made && ascending {
            self.ordered_ids.push((e.id, e.position));
        } else {
            self.ids.insert(e.id, e.position);
        }
    }

    /// Appends each entry's position to the posting list of its `key`,
    /// looking each list up once per run of entries with the same key.
    fn add_postings(
        &mut self,
        kind: Postings,
        entries: &[IndexEntry],
        key: impl Fn(&IndexEntry) -> Option<u64>,
    ) {
        let lists = &mut self.postings[kind as usize];
        let mut rest = entries;
        while let Some(first) = rest.first() {
            let k = key(first);
            let run = rest.iter().take_while(|e| key(e) == k).count();
            let (this, next) = rest.split_at(run);
            if let Some(k) = k {
                lists
                    .entry(k)
                    .or_default()
                    .extend(this.iter().map(|e| e.position));
            }
            rest = next;
        }
    }

    /// The position of event `id`, if this segment holds it.
    pub fn lookup_id(&self, id: u128) -> Option<u64> {
        if let Some(p) = self.ids.get(&id) {
            return Some(*p);
        }
        self.ordered_ids
            .binary_search_by(|(k, _)| k.cmp(&id))
            .ok()
            .and_then(|i| self.ordered_ids.get(i))
            .map(|(_, p)| *p)
    }

    /// Records a frame start.
    pub fn add_frame(&mut self, offset: u64) {
        self.frames.push(offset);
    }

    /// Freezes into sorted arrays, ready to be written as an index file.
    pub fn freeze(&self) -> Frozen {
        let mut ids: Vec<(u128, u64)> = Vec::with_capacity(self.ids.len() + self.ordered_ids.len());
        ids.extend_from_slice(&self.ordered_ids);
        ids.extend(self.ids.iter().map(|(k, v)| (*k, *v)));
        // Mostly sorted already: the ordered run, then the few others.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u128, position: u64, ty: u64, correlation: Option<u64>) -> IndexEntry {
        IndexEntry {
            id,
            position,
            type_hash: ty,
            category_hash: 7,
            correlation_hash: correlation,
            store_made: true,
        }
    }

    #[test]
    fn ids_in_and_out_of_order_are_all_found_and_frozen_sorted() {
        let mut idx = ActiveIndex::default();
        // Ascending store ids, a caller's id below them, a caller's id
        // above them, then ascending ids again (below that one).
        idx.add_run(&[entry(10, 100, 1, None), entry(20, 200, 1, None)]);
        idx.add(&entry(5, 300, 1, None));
        idx.add(&entry(u128::MAX, 400, 1, None));
        idx.add_run(&[entry(30, 500, 1, None), entry(40, 600, 1, None)]);
        for (id, p) in [
            (10, 100),
            (20, 200),
            (5, 300),
            (u128::MAX, 400),
            (30, 500),
            (40, 600),
        ] {
            assert_eq!(idx.lookup_id(id), Some(p), "id {id}");
        }
        assert_eq!(idx.lookup_id(15), None);
        assert_eq!(idx.events, 6);
        let frozen = idx.freeze();
        let want = vec![
            (5, 300),
            (10, 100),
            (20, 200),
            (30, 500),
            (40, 600),
            (u128::MAX, 400),
        ];
        assert_eq!(frozen.ids, want);
    }

    #[test]
    fn a_callers_high_id_does_not_push_the_stores_ids_out_of_the_list() {
        let mut idx = ActiveIndex::default();
        idx.add(&entry(10, 100, 1, None));
        idx.add(&IndexEntry {
            store_made: false,
            ..entry(u128::MAX - 1, 200, 1, None)
        });
        idx.add_run(&[entry(20, 300, 1, None), entry(30, 400, 1, None)]);
        assert_eq!(idx.ordered_ids, vec![(10, 100), (20, 300), (30, 400)]);
        assert_eq!(idx.ids.len(), 1);
        assert_eq!(idx.lookup_id(u128::MAX - 1), Some(200));
        assert_eq!(idx.lookup_id(30), Some(400));
    }

    #[test]
    fn a_run_fills_each_posting_list_in_position_order() {
        let mut idx = ActiveIndex::default();
        idx.add_run(&[
            entry(1, 10, 1, Some(9)),
            entry(2, 20, 1, Some(9)),
            entry(3, 30, 2, None),
            entry(4, 40, 1, Some(8)),
        ]);
        idx.add_run(&[entry(5, 50, 2, Some(9))]);
        let list = |kind, key| active_postings_from(&idx, kind, key, 0).to_vec();
        assert_eq!(list(Postings::Type, 1), vec![10, 20, 40]);
        assert_eq!(list(Postings::Type, 2), vec![30, 50]);
        assert_eq!(list(Postings::Category, 7), vec![10, 20, 30, 40, 50]);
        assert_eq!(list(Postings::Correlation, 9), vec![10, 20, 50]);
        assert_eq!(list(Postings::Correlation, 8), vec![40]);
        assert!(idx.postings[Postings::Correlation as usize].len() == 2);
        assert_eq!(active_postings_from(&idx, Postings::Type, 1, 15), &[20, 40]);
    }
}
