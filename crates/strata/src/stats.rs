//! Counters a repository keeps, for metrics and tests.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
    /// Snapshot points skipped: too many saves were in flight, or an
    /// erasure began while the command ran.
    pub snapshots_skipped: u64,
    /// Snapshots found on load but ignored: another aggregate type or schema
    /// version, unreadable, or unreachable.
    pub snapshots_ignored: u64,
    /// Loads that started from a snapshot.
    pub snapshots_used: u64,
}

/// How many stripes the counters are split into. Every worker thread bumps
/// its own stripe, so hot counters do not bounce one cache line between cores.
const COUNTER_STRIPES: usize = 8;

/// One stripe of the counters, on its own cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Stripe {
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

/// A repository's counters, striped by thread.
#[derive(Debug)]
pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            stripes: (0..COUNTER_STRIPES).map(|_| Stripe::default()).collect(),
        }
    }
}

thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
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
    /// This thread's stripe: bump counters here.
    pub(crate) fn local(&self) -> &Stripe {
        let i = STRIPE.with(|i| *i) % self.stripes.len();
        &self.stripes[i]
    }

    pub(crate) fn read(&self) -> RepositoryStats {
        let sum = |f: fn(&Stripe) -> &AtomicU64| -> u64 {
            self.stripes
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };
        RepositoryStats {
            commands: sum(|s| &s.commands),
            conflicts: sum(|s| &s.conflicts),
            conflicts_exhausted: sum(|s| &s.conflicts_exhausted),
            cache_hits: sum(|s| &s.cache_hits),
            cache_misses: sum(|s| &s.cache_misses),
            events_loaded: sum(|s| &s.events_loaded),
            snapshots_written: sum(|s| &s.snapshots_written),
            snapshot_failures: sum(|s| &s.snapshot_failures),
            snapshots_skipped: sum(|s| &s.snapshots_skipped),
            snapshots_ignored: sum(|s| &s.snapshots_ignored),
            snapshots_used: sum(|s| &s.snapshots_used),
        }
    }
}
