//! Counters a repository keeps, for metrics and tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of a repository's counters (all since creation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepositoryStats {
    /// Commands executed (accepted, rejected or failed).
    pub commands: u64,
    /// Appends that lost an optimistic-concurrency race (each one retried or
    /// returned as a conflict).
    pub conflicts: u64,
    /// Commands that failed with a conflict after their last attempt.
    pub conflicts_exhausted: u64,
    /// Commands that found their aggregate loaded in the cache.
    pub cache_hits: u64,
    /// Commands that had to load their aggregate from the store.
    pub cache_misses: u64,
    /// Events read from the store and applied while loading or catching up.
    pub events_loaded: u64,
    /// Snapshots saved.
    pub snapshots_written: u64,
    /// Snapshots whose save failed (logged; the command was not affected).
    pub snapshot_failures: u64,
    /// Snapshot points skipped because too many saves were in flight.
    pub snapshots_skipped: u64,
    /// Snapshots found on load but ignored: another aggregate type or schema
    /// version, unreadable, or unreachable.
    pub snapshots_ignored: u64,
    /// Loads that started from a snapshot.
    pub snapshots_used: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commands: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) conflicts_exhausted: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    pub(crate) events_loaded: AtomicU64,
    pub(crate) snapshots_written: AtomicU64,
    pub(crate) snapshot_failures: AtomicU64,
    pub(crate) snapshots_skipped: AtomicU64,
    pub(crate) snapshots_ignored: AtomicU64,
    pub(crate) snapshots_used: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Counters {
    pub(crate) fn read(&self) -> RepositoryStats {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RepositoryStats {
            commands: r(&self.commands),
            conflicts: r(&self.conflicts),
            conflicts_exhausted: r(&self.conflicts_exhausted),
            cache_hits: r(&self.cache_hits),
            cache_misses: r(&self.cache_misses),
            events_loaded: r(&self.events_loaded),
            snapshots_written: r(&self.snapshots_written),
            snapshot_failures: r(&self.snapshot_failures),
            snapshots_skipped: r(&self.snapshots_skipped),
            snapshots_ignored: r(&self.snapshots_ignored),
            snapshots_used: r(&self.snapshots_used),
        }
    }
}
