//! Snapshots: when to take them, and how the repository writes
//! and reads them without ever letting them fail a command.
//!
//! A snapshot is the aggregate's state serialized as JSON at a stream
//! version, tagged with the aggregate type and
//! [`Aggregate::SNAPSHOT_SCHEMA_VERSION`]. Loading starts from the newest
//! usable snapshot and applies only the events after it
//! (`rebuild_optimized`). Snapshots are an optimization: a
//! snapshot that is missing, unreadable, of another type or of another schema
//! version is ignored and the events are replayed instead.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use strata_core::{Snapshot, SnapshotStore, StreamId, Version};
use tokio::sync::Notify;

use crate::aggregate::Aggregate;
use crate::stats::{bump, Counters};

/// Most snapshot saves in flight at once per repository; a snapshot point
/// reached while this many are pending is skipped (and counted), so a slow
/// snapshot store can never make memory grow without bound.
pub const MAX_SNAPSHOT_SAVES_IN_FLIGHT: usize = 1024;

/// When to take a snapshot.
///
/// ```
/// use strata::SnapshotPolicy;
/// let p = SnapshotPolicy::every(100);
/// assert!(p.is_due(99, 100));     // reached version 100
/// assert!(p.is_due(98, 101));     // a command whose events crossed 100
/// assert!(!p.is_due(100, 101));
/// assert!(!SnapshotPolicy::Never.is_due(0, 1_000));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SnapshotPolicy {
    /// Never take snapshots (loads replay every event).
    #[default]
    Never,
    /// Take one whenever the stream version reaches a multiple of `k`
    /// (`t mod k = 0`). A command whose events jump over a
    /// multiple takes it at the version the command ends at. `Every(0)` means never.
    Every(u64),
}

impl SnapshotPolicy {
    /// A snapshot every `k` events.
    pub fn every(k: u64) -> Self {
        SnapshotPolicy::Every(k)
    }

    /// Whether a command that moved the stream from version `before` to
    /// `after` reached a snapshot point.
    pub fn is_due(&self, before: Version, after: Version) -> bool {
        match *self {
            SnapshotPolicy::Every(k) if k > 0 => after / k > before / k,
            _ => false,
        }
    }
}

/// State shared with the background save tasks.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
    /// Erasures begun so far. A command notes it before it appends; if an
    /// erasure began since, its snapshot is not saved (it could be of the
    /// stream just erased, saved after the erasure removed its snapshots).
    erasures: AtomicU64,
}

/// The repository's snapshot side: a store, a policy and bookkeeping.
pub(crate) struct Snapshotter {
    store: Arc<dyn SnapshotStore>,
    policy: SnapshotPolicy,
    in_flight: Arc<InFlight>,
}

impl Snapshotter {
    pub(crate) fn new(store: Arc<dyn SnapshotStore>, policy: SnapshotPolicy) -> Self {
        Snapshotter {
            store,
            policy,
            in_flight: Arc::new(InFlight::default()),
        }
    }

    /// The newest usable snapshot of `stream` at or before `max_version`,
    /// decoded. Anything wrong with it is logged and counted, and yields `None`.
    pub(crate) async fn load<A: Aggregate>(
        &self,
        stream: &StreamId,
        max_version: Version,
        counters: &Counters,
    ) -> Option<(A, Version)> {
        let snapshot = match self.store.load(stream, max_version).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(error) => {
                tracing::warn!(%stream, %error, "snapshot load failed; replaying events instead");
                bump(&counters.local().snapshots_ignored);
                return None;
            }
        };
        if snapshot.aggregate_type != A::TYPE
            || snapshot.schema_version != A::SNAPSHOT_SCHEMA_VERSION
            || snapshot.version > max_version
        {
            tracing::debug!(
                %stream,
                snapshot_version = snapshot.version,
                snapshot_type = %snapshot.aggregate_type,
                snapshot_schema = snapshot.schema_version,
                code_schema = A::SNAPSHOT_SCHEMA_VERSION,
                "ignoring a snapshot of another aggregate type or schema version"
            );
            bump(&counters.local().snapshots_ignored);
            return None;
        }
        match serde_json::from_slice::<A>(&snapshot.state) {
            Ok(state) => {
                bump(&counters.local().snapshots_used);
                Some((state, snapshot.version))
            }
            Err(error) => {
                tracing::warn!(
                    %stream,
                    snapshot_version = snapshot.version,
                    %error,
                    "ignoring a snapshot that does not deserialize; raise \
                     Aggregate::SNAPSHOT_SCHEMA_VERSION when the state's shape changes"
                );
                bump(&counters.local().snapshots_ignored);
                None
            }
        }
    }

    /// How many erasures have begun: a command notes it before appending
    /// and hands it to [`Snapshotter::maybe_save`].
    pub(crate) fn erasures(&self) -> u64 {
        self.in_flight.erasures.load(Ordering::SeqCst)
    }

    /// Saves a snapshot of `state` in the background if the command that
    /// moved the stream from `before` to `after` reached a snapshot point,
    /// and no erasure began since the command noted `erasures_seen`. Never
    /// fails and never waits for the snapshot store.
    pub(crate) fn maybe_save<A: Aggregate>(
        &self,
        stream: &StreamId,
        (before, after): (Version, Version),
        state: &A,
        erasures_seen: u64,
        counters: &Arc<Counters>,
    ) {
        if !self.policy.is_due(before, after) {
            return;
        }
        // Serialize now (the state will move on), save later.
        let bytes = match serde_json::to_vec(state) {
            Ok(b) => b,
            Err(error) => {
                tracing::warn!(%stream, version = after, %error, "snapshot state does not serialize");
                bump(&counters.local().snapshot_failures);
                return;
            }
        };
        let in_flight = &self.in_flight;
        if in_flight.count.fetch_add(1, Ordering::SeqCst) >= MAX_SNAPSHOT_SAVES_IN_FLIGHT {
            self.done();
            tracing::debug!(%stream, version = after, "snapshot skipped: too many saves in flight");
            bump(&counters.local().snapshots_skipped);
            return;
        }
        // Counted in flight first, then checked: an erasure bumps the count
        // of erasures first, then waits for the saves in flight, so either
        // this sees the erasure or the erasure waits for this save.
        if in_flight.erasures.load(Ordering::SeqCst) != erasures_seen {
            self.done();
            tracing::debug!(%stream, version = after, "snapshot skipped: an erasure began meanwhile");
            bump(&counters.local().snapshots_skipped);
            return;
        }
        let snapshot = Snapshot {
            stream: stream.clone(),
            aggregate_type: A::TYPE.to_owned(),
            version: after,
            schema_version: A::SNAPSHOT_SCHEMA_VERSION,
            state: bytes.into(),
            taken_at: chrono::Utc::now(),
        };
        let store = Arc::clone(&self.store);
        let task_counters = Arc::clone(counters);
        let in_flight = Arc::clone(in_flight);
        let save = async move {
            let counters = task_counters;
            let stream = snapshot.stream.clone();
            let version = snapshot.version;
            match store.save(snapshot).await {
                Ok(()) => bump(&counters.local().snapshots_written),
                Err(error) => {
                    tracing::warn!(%stream, version, %error, "snapshot save failed; the command is not affected");
                    bump(&counters.local().snapshot_failures);
                }
            }
            if in_flight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
                in_flight.idle.notify_waiters();
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(save);
            }
            Err(_) => {
                // Not on a Tokio runtime: there is nowhere to run the save in
                // the background, so the snapshot point is skipped.
                self.done();
                bump(&counters.local().snapshots_skipped);
                drop(save);
            }
        }
    }

    fn done(&self) {
        if self.in_flight.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.in_flight.idle.notify_waiters();
        }
    }

    /// Waits until every background save started so far has finished.
    pub(crate) async fn flush(&self) {
        loop {
            let idle = self.in_flight.idle.notified();
            if self.in_flight.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    pub(crate) fn store(&self) -> &Arc<dyn SnapshotStore> {
        &self.store
    }

    /// Erases every snapshot of `stream` ([`SnapshotStore::erase`]) once
    /// the saves in flight have finished. Call it after the stream itself
    /// was erased: a command that appended before that and has not saved
    /// its snapshot yet either is waited for here or skips its save.
    pub(crate) async fn erase(&self, stream: &StreamId) -> strata_core::Result<()> {
        self.in_flight.erasures.fetch_add(1, Ordering::SeqCst);
        self.flush().await;
        self.store.erase(stream).await
    }
}
