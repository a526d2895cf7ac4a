//! Snapshots of aggregate state: the trait durable stores
//! implement, and an in-memory implementation.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::stream_id::StreamId;
use crate::version::Version;

/// How many snapshots per stream the in-memory store keeps (newest first).
pub const MAX_SNAPSHOTS_PER_STREAM: usize = 16;

/// A serialized aggregate state at a stream version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// The aggregate's type name.
    pub aggregate_type: String,
    /// The stream version the state includes (events `1..=version` applied).
    pub version: Version,
    /// The aggregate's state schema version when the snapshot was taken; a
    /// snapshot whose schema differs from the code's is ignored.
    pub schema_version: u32,
    /// The serialized state.
    pub state: Bytes,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
}

/// Where snapshots are kept.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Stores a snapshot (replacing one at the same stream and version).
    async fn save(&self, snapshot: Snapshot) -> Result<()>;

    /// The newest snapshot of `stream` whose version is `<= max_version`
    /// (use `Version::MAX` for the newest of all).
    async fn load(&self, stream: &StreamId, max_version: Version) -> Result<Option<Snapshot>>;

    /// Removes every snapshot of `stream`.
    async fn delete(&self, stream: &StreamId) -> Result<()>;

    /// Erases every snapshot of `stream`: like [`SnapshotStore::delete`],
    /// and once it returns `Ok` none of the bytes of any snapshot of the
    /// stream (its state, its aggregate type) is left in the store's
    /// storage, not even in records that were already dead (superseded or
    /// deleted). It is what erasing a stream
    /// ([`EventStore::erase_stream`](crate::EventStore::erase_stream)) does
    /// to its snapshots; ADR 0018 says what erasure does not reach (freed
    /// disk blocks, a database's dead rows until it vacuums, backups).
    ///
    /// The default calls `delete`, which is enough for a store whose delete
    /// already removes the data (memory, database rows). A store that
    /// deletes by writing a tombstone must override it.
    async fn erase(&self, stream: &StreamId) -> Result<()> {
        self.delete(stream).await
    }
}

/// Snapshots in memory, [`MAX_SNAPSHOTS_PER_STREAM`] per stream.
#[derive(Debug, Default)]
pub struct MemorySnapshotStore {
    inner: Mutex<HashMap<StreamId, BTreeMap<Version, Snapshot>>>,
}

impl MemorySnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SnapshotStore for MemorySnapshotStore {
    async fn save(&self, snapshot: Snapshot) -> Result<()> {
        let mut map = self.inner.lock();
        let per = map.entry(snapshot.stream.clone()).or_default();
        per.insert(snapshot.version, snapshot);
        while per.len() > MAX_SNAPSHOTS_PER_STREAM {
            per.pop_first();
        }
        Ok(())
    }

    async fn load(&self, stream: &StreamId, max_version: Version) -> Result<Option<Snapshot>> {
        let map = self.inner.lock();
        Ok(map
            .get(stream)
            .and_then(|per| per.range(..=max_version).next_back())
            .map(|(_, s)| s.clone()))
    }

    async fn delete(&self, stream: &StreamId) -> Result<()> {
        self.inner.lock().remove(stream);
        Ok(())
    }
}
