//! The in-process aggregate cache: a bounded LRU of loaded aggregates, so a
//! command on a hot aggregate reads nothing from the store.
//!
//! Each entry is a slot behind an async mutex: commands on one aggregate in
//! one process take turns on the cached state instead of racing each other
//! through the store, and the state is evolved in place after each append —
//! never cloned or re-serialized. A cached state can still be stale when
//! another process (or another repository) wrote to the stream; the append's
//! expected-version check catches that, and the repository catches the slot
//! up and retries.
//!
//! The LRU is split into shards, each behind its own short-held lock, so
//! concurrent commands on different aggregates rarely wait for each other.

use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::{DefaultHasher, LruCache};
use parking_lot::Mutex;
use strata_core::{StreamId, Version};

/// Most shards the cache is split into.
const MAX_CACHE_SHARDS: usize = 16;

/// One aggregate's working copy: its state at `version`.
pub(crate) struct Slot<A> {
    pub(crate) stream: StreamId,
    pub(crate) state: A,
    /// The version of the last event applied (0: none).
    pub(crate) version: Version,
    /// Whether `state` reflects the stream up to `version`. False for a new
    /// slot, and while events are being applied (so a panic in `apply`
    /// leaves a slot that reloads instead of a half-applied one).
    pub(crate) loaded: bool,
    /// Whether the stream is known to have moved past `version` (a conflict
    /// was returned): the next command catches up before deciding.
    pub(crate) stale: bool,
}

impl<A: Default> Slot<A> {
    pub(crate) fn new(stream: StreamId) -> Self {
        Slot {
            stream,
            state: A::default(),
            version: 0,
            loaded: false,
            stale: false,
        }
    }
}

pub(crate) type SlotRef<A> = Arc<tokio::sync::Mutex<Slot<A>>>;

type Shard<A> = Mutex<LruCache<Box<str>, SlotRef<A>>>;

/// A sharded, bounded LRU from aggregate id to slot.
pub(crate) struct AggregateCache<A> {
    shards: Box<[Shard<A>]>,
    /// Picks the shard; a keyed hash, since ids come from callers.
    hasher: DefaultHasher,
}

impl<A: Default> AggregateCache<A> {
    /// A cache of about `capacity` aggregates (rounded up to a multiple of
    /// the shard count).
    pub(crate) fn new(capacity: NonZeroUsize) -> Self {
        let shards = capacity.get().min(MAX_CACHE_SHARDS);
        let per_shard = capacity.get().div_ceil(shards);
        let per_shard = NonZeroUsize::new(per_shard).unwrap_or(NonZeroUsize::MIN);
        AggregateCache {
            shards: (0..shards)
                .map(|_| Mutex::new(LruCache::new(per_shard)))
                .collect(),
            hasher: DefaultHasher::default(),
        }
    }

    fn shard(&self, id: &str) -> &Shard<A> {
        let i = (self.hasher.hash_one(id) as usize) % self.shards.len();
        &self.shards[i]
    }

    /// The slot of `id`, if cached (and marks it most recently used).
    pub(crate) fn get(&self, id: &str) -> Option<SlotRef<A>> {
        self.shard(id).lock().get(id).cloned()
    }

    /// The slot of `id`, inserting a new unloaded one for `stream` if absent;
    /// may evict the least recently used slot of the shard.
    pub(crate) fn get_or_insert(&self, id: &str, stream: StreamId) -> SlotRef<A> {
        let mut shard = self.shard(id).lock();
        shard
            .get_or_insert(Box::from(id), || {
                Arc::new(tokio::sync::Mutex::new(Slot::new(stream)))
            })
            .clone()
    }

    /// Forgets `id`.
    pub(crate) fn remove(&self, id: &str) {
        self.shard(id).lock().pop(id);
    }

    /// How many aggregates are cached.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_and_keeps_hot_entries() {
        let cache: AggregateCache<u32> = AggregateCache::new(NonZeroUsize::new(32).unwrap());
        let stream = |i: usize| StreamId::new(format!("t-{i}")).unwrap();
        for i in 0..1000 {
            cache.get_or_insert(&i.to_string(), stream(i));
            // Touch the hot one so it is never the least recently used.
            assert!(cache.get("0").is_some());
        }
        assert!(cache.len() <= 32, "{}", cache.len());
        assert!(cache.get("0").is_some());
        cache.remove("0");
        assert!(cache.get("0").is_none());
    }

    #[test]
    fn tiny_capacity_works() {
        let cache: AggregateCache<u32> = AggregateCache::new(NonZeroUsize::MIN);
        let a = cache.get_or_insert("a", StreamId::new("t-a").unwrap());
        let b = cache.get_or_insert("b", StreamId::new("t-b").unwrap());
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
    }
}
