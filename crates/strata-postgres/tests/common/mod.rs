//! Shared by the PostgreSQL integration tests: the server's address, the
//! skip-or-fail rule, per-test schemas and the conformance harness.
//!
//! Every test uses its own schema (`t_<pid>_<n>_<nanos>`), so tests run in
//! parallel against one database; schemas are dropped at the end, best-effort.
//! With no server answering, tests print a loud message and pass, unless
//! `STRATA_REQUIRE_PG=1`, when they fail.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strata_core::{
    async_trait, AppendResult, Direction, EventStore, ExpectedVersion, Limits, MemoryStore,
    NewEvent, Position, ReadFilter, RecordedEvent, Result, StreamAppend, StreamId, StreamInfo,
    SubscribeFrom, Subscription, Version,
};
use strata_postgres::{EventsLayout, PgConfig, PostgresStore};
use strata_testkit::conformance::StoreHarness;

/// The test database.
pub fn database_url() -> String {
    std::env::var("STRATA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn require_pg() -> bool {
    std::env::var("STRATA_REQUIRE_PG").is_ok_and(|v| v == "1")
}

/// Whether the server answers (checked once per test binary).
fn server_answers() -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        let url = database_url();
        let Ok(config) = url.parse::<tokio_postgres::Config>() else {
            return false;
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else {
            return false;
        };
        addrs
            .into_iter()
            .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(3)).is_ok())
    })
}

/// `true` when the test should run; prints a loud skip message (or panics
/// under `STRATA_REQUIRE_PG=1`) when no server answers.
pub fn pg_available(test: &str) -> bool {
    if server_answers() {
        return true;
    }
    if require_pg() {
        panic!(
            "{test}: no PostgreSQL server answers at {} and STRATA_REQUIRE_PG=1",
            database_url()
        );
    }
    eprintln!(
        "\n!!! SKIPPED {test}: no PostgreSQL server answers at {} \
         (set STRATA_TEST_DATABASE_URL, or STRATA_REQUIRE_PG=1 to fail instead) !!!\n",
        database_url()
    );
    false
}

/// A schema name no other test uses.
pub fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A raw connection for test setup and inspection.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&database_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops schemas, best-effort, from a thread of its own (usable in `Drop`).
pub fn drop_schemas(schemas: Vec<String>) {
    if schemas.is_empty() {
        return;
    }
    let _ = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok((client, connection)) =
                tokio_postgres::connect(&database_url(), tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(async move {
                let _ = connection.await;
            });
            for s in schemas {
                if let Err(e) = client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE"))
                    .await
                {
                    eprintln!("could not drop schema {s}: {e}");
                }
            }
        });
    })
    .join();
}

/// A schema dropped when this guard is.
pub struct SchemaGuard(pub String);

impl SchemaGuard {
    pub fn new(prefix: &str) -> Self {
        SchemaGuard(unique_schema(prefix))
    }

    pub fn config(&self) -> PgConfig {
        PgConfig::new(database_url()).schema(&self.0).pool_size(4)
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        drop_schemas(vec![self.0.clone()]);
    }
}

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

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        delegate!(self, s => s.subscribe(from, filter).await)
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        delegate!(self, s => s.stream_info(stream).await)
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        delegate!(self, s => s.delete_stream(stream, expected).await)
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        delegate!(self, s => s.tombstone_stream(stream, expected).await)
    }

    async fn head_position(&self) -> Result<Position> {
        delegate!(self, s => s.head_position().await)
    }

    fn limits(&self) -> &Limits {
        delegate!(self, s => s.limits())
    }
}
