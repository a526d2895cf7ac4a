//! Shared by the PostgreSQL integration tests: the test database
//! (`database.rs`, also used by other test crates) and the conformance
//! harness.

#![allow(dead_code, clippy::unwrap_used)]

mod database;

use std::sync::Mutex;

use strata_core::dcb::{AppendCondition, Query};
use strata_core::{
    async_trait, AppendResult, Direction, EventStore, ExpectedVersion, Limits, MemoryStore,
    NewEvent, Position, ReadFilter, RecordedEvent, Result, StreamAppend, StreamId, StreamInfo,
    StreamListQuery, StreamPage, SubscribeFrom, Subscription, Version,
};
use strata_postgres::{EventsLayout, PgConfig, PostgresStore};
use strata_testkit::conformance::StoreHarness;

pub use database::*;

/// The conformance harness: `open` makes a store in a fresh schema,
/// `reopen` closes it and connects again to the same schema.
pub struct PgHarness {
    layout: EventsLayout,
    schemas: Mutex<Vec<String>>,
}

impl PgHarness {
    pub fn plain() -> Self {
        Self::new(EventsLayout::Plain)
    }

    pub fn partitioned(positions_per_partition: u64) -> Self {
        Self::new(EventsLayout::Partitioned {
            positions_per_partition,
        })
    }

    fn new(layout: EventsLayout) -> Self {
        PgHarness {
            layout,
            schemas: Mutex::new(Vec::new()),
        }
    }

    fn config(&self, schema: &str) -> PgConfig {
        PgConfig::new(database_url())
            .schema(schema)
            .pool_size(4)
            .layout(self.layout)
    }
}

impl Drop for PgHarness {
    fn drop(&mut self) {
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        drop_schemas(schemas);
    }
}

/// The store under test, or — when no server answers and PostgreSQL is not
/// required — a memory store, so the suite still runs (loudly skipped).
#[derive(Clone)]
pub enum HarnessStore {
    /// The real thing.
    Pg(PostgresStore),
    /// Stand-in when the server is missing.
    Skipped(MemoryStore),
}

#[async_trait]
impl StoreHarness for PgHarness {
    type Store = HarnessStore;

    async fn open(&self) -> HarnessStore {
        if !pg_available("conformance case") {
            return HarnessStore::Skipped(MemoryStore::new());
        }
        let schema = unique_schema("t");
        self.schemas.lock().unwrap().push(schema.clone());
        HarnessStore::Pg(
            PostgresStore::connect_with(self.config(&schema))
                .await
                .expect("open a PostgreSQL store"),
        )
    }

    async fn reopen(&self, store: HarnessStore) -> HarnessStore {
        match store {
            HarnessStore::Pg(store) => {
                let schema = store.schema().to_owned();
                store.close().await.expect("close the store");
                HarnessStore::Pg(
                    PostgresStore::connect_with(self.config(&schema))
                        .await
                        .expect("reopen a PostgreSQL store"),
                )
            }
            skipped => skipped,
        }
    }
}

macro_rules! delegate {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            HarnessStore::Pg($s) => $call,
            HarnessStore::Skipped($s) => $call,
        }
    };
}

#[async_trait]
impl EventStore for HarnessStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        delegate!(self, s => s.append(stream, expected, events).await)
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        delegate!(self, s => s.append_multi(appends).await)
    }

    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        delegate!(self, s => s.append_if(appends, condition).await)
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_query(query, after, limit).await)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_stream(stream, from, max_count, direction).await)
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_all(from, max_count, filter).await)
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_all_backward(before, max_count, filter).await)
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        delegate!(self, s => s.subscribe(from, filter).await)
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        delegate!(self, s => s.stream_info(stream).await)
    }

    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        delegate!(self, s => s.list_streams(query).await)
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        delegate!(self, s => s.delete_stream(stream, expected).await)
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        delegate!(self, s => s.tombstone_stream(stream, expected).await)
    }

    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        delegate!(self, s => s.erase_stream(stream, expected).await)
    }

    async fn head_position(&self) -> Result<Position> {
        delegate!(self, s => s.head_position().await)
    }

    fn limits(&self) -> &Limits {
        delegate!(self, s => s.limits())
    }
}
