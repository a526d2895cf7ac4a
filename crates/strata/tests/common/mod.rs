//! Store wrappers shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use strata::dcb::Query;
use strata::{
    async_trait, AppendResult, Direction, EventStore, ExpectedVersion, Limits, MemoryStore,
    NewEvent, Position, ReadFilter, RecordedEvent, Snapshot, SnapshotStore, StreamAppend, StreamId,
    StreamInfo, StreamMetadata, SubscribeFrom, Subscription, Version,
};

/// A `MemoryStore` that counts reads (stream, `$all` and query reads) and
/// can yield to the scheduler before
/// each append, so that concurrent commands really interleave.
#[derive(Clone, Default)]
pub struct InstrumentedStore {
    pub inner: MemoryStore,
    pub stream_reads: Arc<AtomicU64>,
    pub all_reads: Arc<AtomicU64>,
    pub query_reads: Arc<AtomicU64>,
    pub appends: Arc<AtomicU64>,
    pub yield_before_append: Arc<AtomicBool>,
}

impl InstrumentedStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn yielding() -> Self {
        let s = Self::default();
        s.yield_before_append.store(true, Ordering::SeqCst);
        s
    }

    pub fn reads(&self) -> u64 {
        self.stream_reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventStore for InstrumentedStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> strata::Result<AppendResult> {
        if self.yield_before_append.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append(stream, expected, events).await
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> strata::Result<Vec<AppendResult>> {
        self.inner.append_multi(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner
            .read_stream(stream, from, max_count, direction)
            .await
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.all_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_all(from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.all_reads.fetch_add(1, Ordering::SeqCst);
        self.inner
            .read_all_backward(before, max_count, filter)
            .await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.query_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read_query(query, after, limit).await
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: ReadFilter,
    ) -> strata::Result<Subscription> {
        self.inner.subscribe(from, filter).await
    }

    async fn stream_info(&self, stream: &StreamId) -> strata::Result<Option<StreamInfo>> {
        self.stream_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.stream_info(stream).await
    }

    async fn delete_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> strata::Result<()> {
        self.inner.delete_stream(stream, expected).await
    }

    async fn tombstone_stream(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
    ) -> strata::Result<()> {
        self.inner.tombstone_stream(stream, expected).await
    }

    async fn head_position(&self) -> strata::Result<Position> {
        self.inner.head_position().await
    }

    async fn set_stream_metadata(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        metadata: &StreamMetadata,
    ) -> strata::Result<Version> {
        self.inner
            .set_stream_metadata(stream, expected, metadata)
            .await
    }

    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
}

/// A snapshot store whose saves always fail.
#[derive(Default)]
pub struct FailingSnapshotStore {
    pub attempts: AtomicU64,
}

#[async_trait]
impl SnapshotStore for FailingSnapshotStore {
    async fn save(&self, _snapshot: Snapshot) -> strata::Result<()> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err(strata::Error::Backend("snapshot disk is full".into()))
    }

    async fn load(
        &self,
        _stream: &StreamId,
        _max_version: Version,
    ) -> strata::Result<Option<Snapshot>> {
        Err(strata::Error::Backend("snapshot disk is unreadable".into()))
    }

    async fn delete(&self, _stream: &StreamId) -> strata::Result<()> {
        Ok(())
    }
}
