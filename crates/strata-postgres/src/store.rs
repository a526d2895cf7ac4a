//! [`PostgresStore`]: the whole `EventStore` contract on PostgreSQL.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use strata_core::append_rules::{check_guard, check_readable};
use strata_core::dcb::{tag_set, AppendCondition, Query};
use strata_core::handoff::{request, QueuedBytes};
use strata_core::stream_list::{above_every_name, page_of, prefix_end};
use strata_core::{
    async_trait, AppendResult, Direction, Error, EventId, EventStore, ExpectedVersion, Limits,
    Metadata, NewEvent, Position, ReadFilter, RecordedEvent, Result, StreamAppend, StreamId,
    StreamInfo, StreamListQuery, StreamPage, SubscribeFrom, Subscription, SubscriptionSource,
    Version,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{EventsLayout, Ordering, PgConfig, POOL_WAIT_TIMEOUT_SECS};
use crate::database::{db_error, read_head, Counters, Database};
use crate::error::{is_connection_error, PgError};
use crate::head::HeadFeed;
use crate::metadata::settings_of;
use crate::migrate::{migrate_client, read_layout, schema_version, CURRENT_SCHEMA_VERSION};
use crate::read::{
    event_from_row, head_from_row, param_refs, read_all_backward_query, read_all_query,
    read_query_query, read_stream_query, stream_rows, version_from_row, version_param,
};
use crate::sql::Sql;
use crate::writer::{prepare_bounded, WriteRequest, Writer, MAX_QUEUED_APPENDS};

/// How long [`PostgresStore::close`] waits for its tasks, in seconds.
pub const CLOSE_TIMEOUT_SECS: u64 = 10;

/// What the store's writer has done since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions that committed appends (or decided them without writing).
    pub batches: u64,
    /// Appends (and multi-stream appends) answered, successfully or not.
    pub appends: u64,
    /// Events written.
    pub events: u64,
    /// Batch attempts run again after a dropped connection or a transient error.
    pub retried_attempts: u64,
}

/// An event store in a PostgreSQL schema. Cloning is cheap and shares the
/// pool, the writer and the listener.
///
/// Appends from every clone go through one writer task that combines
/// concurrent appends into one transaction (group commit); positions are
/// assigned under a row lock held to commit, so no reader or subscriber can
/// ever skip an event (see `docs/adr/0005-postgres-global-order.md`).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use strata_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use strata_postgres::PostgresStore;
/// let store = PostgresStore::connect("postgres://postgres@127.0.0.1/test", "strata").await?;
/// let stream = StreamId::new("account-1")?;
/// let event = NewEvent::json("Opened", &serde_json::json!({"owner": "ada"}))?;
/// store.append(&stream, ExpectedVersion::NoStream, vec![event]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Running>,
}

struct Running {
    database: Arc<Database>,
    head: Arc<HeadFeed>,
    writer: mpsc::Sender<WriteRequest>,
    /// Bytes of appends waiting for the writer, bounded.
    queued: QueuedBytes,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Tasks>,
}

#[derive(Default)]
struct Tasks {
    writer: Option<JoinHandle<()>>,
    listener: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.database.config.schema)
            .field("layout", &self.inner.database.layout)
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` and uses (creating and migrating as
    /// needed) the schema `schema`, with default settings otherwise.
    pub async fn connect(
        url: impl Into<String>,
        schema: impl Into<String>,
    ) -> std::result::Result<Self, PgError> {
        Self::connect_with(PgConfig::new(url).schema(schema)).await
    }

    /// Connects with a full configuration.
    pub async fn connect_with(config: PgConfig) -> std::result::Result<Self, PgError> {
        config.validate()?;
        if config.ordering == Ordering::Naive {
            tracing::warn!(
                schema = %config.schema,
                "TEST-ONLY naive ordering: subscribers of this store can skip events"
            );
        }
        let manager_config = || ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.pg_config()? {
            (pg, None) => Manager::from_config(pg, tokio_postgres::NoTls, manager_config()),
            (pg, Some(tls)) => Manager::from_config(pg, tls, manager_config()),
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(POOL_WAIT_TIMEOUT_SECS)))
            .create_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| PgError::Config(format!("cannot build the connection pool: {e}")))?;
        let layout = {
            let mut client = pool
                .get()
                .await
                .map_err(|e| PgError::pool("connecting", e))?;
            if config.auto_migrate {
                let client: &mut tokio_postgres::Client = &mut client;
                migrate_client(client, &config.schema, config.layout)
                    .await?
                    .layout
            } else {
                let version = schema_version(&client, &config.schema).await?;
                if version != CURRENT_SCHEMA_VERSION {
                    return Err(PgError::Schema {
                        schema: config.schema.clone(),
                        reason: format!(
                            "it is at version {version}, this build needs {CURRENT_SCHEMA_VERSION}: \
                             run `strata migrate` (or connect with auto_migrate)"
                        ),
                    });
                }
                read_layout(&**client, &config.schema).await?
            }
        };
        if layout != config.layout {
            tracing::info!(
                schema = %config.schema,
                recorded = ?layout,
                configured = ?config.layout,
                "using the events layout recorded in the schema"
            );
        }
        let sql = Sql::new(&config.schema, layout);
        let database = Arc::new(Database {
            pool,
            sql,
            config,
            layout,
            stats: Counters::default(),
            scavenge: Default::default(),
        });
        let start = read_head(&database).await?;
        let head = Arc::new(HeadFeed::new(start));
        let (writer_tx, writer_rx) = mpsc::channel(MAX_QUEUED_APPENDS);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let writer = Writer::new(database.clone(), head.clone(), start);
        let writer_task = tokio::spawn(writer.run(writer_rx, shutdown_rx));
        Ok(PostgresStore {
            inner: Arc::new(Running {
                queued: QueuedBytes::new(database.config.limits.max_queued_append_bytes),
                database,
                head,
                writer: writer_tx,
                shutdown,
                tasks: Mutex::new(Tasks {
                    writer: Some(writer_task),
                    listener: None,
                }),
            }),
        })
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.inner.database.config.schema
    }

    /// The events layout recorded in the schema.
    pub fn layout(&self) -> EventsLayout {
        self.inner.database.layout
    }

    /// The connection pool, for work outside the store's tables (the
    /// transactional projection, tests, benchmarks).
    pub fn pool(&self) -> &Pool {
        &self.inner.database.pool
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.database.config
    }

    /// What the writer has done so far (group commit shows as
    /// `appends / batches`).
    pub fn stats(&self) -> StoreStats {
        let c = &self.inner.database.stats;
        let get = |a: &AtomicU64| a.load(AtomicOrdering::Relaxed);
        StoreStats {
            batches: get(&c.batches),
            appends: get(&c.appends),
            events: get(&c.events),
            retried_attempts: get(&c.retried_attempts),
        }
    }

    pub(crate) fn database(&self) -> &Arc<Database> {
        &self.inner.database
    }

    /// Stops the writer (after the appends already queued) and the listener,
    /// and closes the pool. Appends after this fail with `Closed`;
    /// subscriptions end once they have delivered what was committed.
    pub async fn close(self) -> Result<()> {
        let _ = self.inner.shutdown.send(true);
        let tasks = {
            let mut t = self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            [t.writer.take(), t.listener.take()]
        };
        for task in tasks.into_iter().flatten() {
            match tokio::time::timeout(Duration::from_secs(CLOSE_TIMEOUT_SECS), task).await {
                Ok(_) => {}
                Err(_) => {
                    return Err(Error::Timeout {
                        context: "closing the PostgreSQL store".into(),
                        millis: CLOSE_TIMEOUT_SECS * 1000,
                    })
                }
            }
        }
        self.inner.database.pool.close();
        Ok(())
    }

    /// A receiver of the committed head, fed by the listener.
    pub(crate) fn head_receiver(&self) -> watch::Receiver<Position> {
        self.ensure_listener();
        self.inner.head.subscribe()
    }

    /// Starts the listener that feeds subscriptions, once.
    fn ensure_listener(&self) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tasks.listener.is_none() && !*self.inner.shutdown.borrow() {
            let task = crate::listener::spawn(
                self.inner.database.clone(),
                self.inner.head.clone(),
                self.inner.shutdown.subscribe(),
            );
            tasks.listener = Some(task);
        }
    }

    async fn submit(
        &self,
        parts: Vec<StreamAppend>,
        condition: Option<AppendCondition>,
        bytes: usize,
    ) -> Result<Vec<AppendResult>> {
        let mut parts = parts;
        let mut metadata = Vec::with_capacity(parts.len());
        let mut settings = Vec::with_capacity(parts.len());
        let mut generated = HashSet::new();
        for part in &mut parts {
            // Bad metadata is refused here, before the writer sees it.
            settings.push(settings_of(part)?);
            let mut meta = Vec::with_capacity(part.events.len());
            for (i, event) in part.events.iter_mut().enumerate() {
                event.tags = tag_set(std::mem::take(&mut event.tags));
                if event.id.is_none() {
                    let id = EventId::new();
                    event.id = Some(id);
                    generated.insert(id);
                }
                meta.push(encode_metadata(i, &event.metadata)?);
            }
            metadata.push(meta);
        }
        let _queued = self.inner.queued.take(bytes)?;
        request(&self.inner.writer, |reply| WriteRequest {
            parts,
            metadata,
            settings,
            generated,
            condition,
            bytes,
            reply,
        })
        .await
    }

    /// Reads the head from the database and publishes it.
    async fn refresh_head(&self) -> Result<Position> {
        let head = read_head(&self.inner.database).await?;
        self.inner.head.publish(head);
        Ok(head)
    }
}

/// The metadata of event `index` as JSON, `None` when empty. PostgreSQL
/// text cannot hold NUL, so a NUL character is refused here, before
/// anything is written.
fn encode_metadata(index: usize, metadata: &Metadata) -> Result<Option<String>> {
    if metadata.is_empty() {
        return Ok(None);
    }
    let has_nul = |s: &str| s.contains('\0');
    let fields = [
        &metadata.correlation_id,
        &metadata.causation_id,
        &metadata.user_id,
        &metadata.source,
    ];
    if fields.iter().any(|f| f.as_deref().is_some_and(has_nul))
        || metadata.extra.iter().any(|(k, v)| has_nul(k) || has_nul(v))
    {
        return Err(Error::invalid(format!(
            "event {index} has a NUL character in its metadata, which PostgreSQL cannot store"
        )));
    }
    serde_json::to_string(metadata)
        .map(Some)
        .map_err(|e| Error::invalid(format!("event {index} metadata: {e}")))
}

/// What a subscription reads from: the pool and the head feed.
struct PgSource {
    database: Arc<Database>,
    head: watch::Receiver<Position>,
}

#[async_trait]
impl SubscriptionSource for PgSource {
    async fn read_page(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        read_all(&self.database, from, max_count, filter).await
    }

    fn head(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }
}

pub(crate) async fn read_all(
    database: &Database,
    from: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> Result<Vec<RecordedEvent>> {
    if max_count == 0 {
        return Ok(Vec::new());
    }
    let (text, params) = read_all_query(&database.sql, from, max_count, filter);
    run_all_read(database, text, params).await
}

/// `read_all_backward` (limits already checked): `ORDER BY position DESC`
/// down the same indexes a forward read walks up.
pub(crate) async fn read_all_backward(
    database: &Database,
    before: Position,
    max_count: usize,
    filter: &ReadFilter,
) -> Result<Vec<RecordedEvent>> {
    if max_count == 0 || before == Position::START {
        return Ok(Vec::new());
    }
    let (text, params) = read_all_backward_query(&database.sql, before, max_count, filter);
    run_all_read(database, text, params).await
}

/// Runs a read of `$all` whose rows are events.
async fn run_all_read(
    database: &Database,
    text: String,
    params: Vec<crate::read::Param>,
) -> Result<Vec<RecordedEvent>> {
    let text = &text;
    let params = &params;
    database
        .read("reading $all", |client| async move {
            let stmt = client
                .prepare_cached(text)
                .await
                .map_err(db_error("reading $all"))?;
            let rows = client
                .query(&stmt, &param_refs(params))
                .await
                .map_err(db_error("reading $all"))?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(event_from_row(row, 0)?);
            }
            Ok(out)
        })
        .await
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult> {
        let bytes = self.limits().check_events(&events)?;
        let mut results = self
            .submit(
                vec![StreamAppend::new(stream.clone(), expected, events)],
                None,
                bytes,
            )
            .await?;
        results
            .pop()
            .ok_or_else(|| Error::Backend("the writer returned no result".into()))
    }

    async fn append_multi(&self, appends: Vec<StreamAppend>) -> Result<Vec<AppendResult>> {
        let bytes = self.limits().check_multi(&appends)?;
        self.submit(appends, None, bytes).await
    }

    /// The condition is checked in the writer's transaction, under the
    /// global position lock, in a batch this append opens
    /// (`docs/postgres.md`, "Tags, query reads and conditional appends").
    async fn append_if(
        &self,
        appends: Vec<StreamAppend>,
        condition: &AppendCondition,
    ) -> Result<Vec<AppendResult>> {
        condition.fail_if_events_match.validate()?;
        let bytes = self.limits().check_multi(&appends)?;
        self.submit(appends, Some(condition.clone()), bytes).await
    }

    async fn read_query(
        &self,
        query: &Query,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>> {
        strata_core::dcb::check_read(query, limit, self.limits())?;
        let database = &self.inner.database;
        let (text, params) = read_query_query(&database.sql, query, after, limit);
        let text = &text;
        let params = &params;
        database
            .read("reading a query", |client| async move {
                // Prepared once per query shape and connection: one round
                // trip a read instead of a parse and then an execute.
                let statement = prepare_bounded(&client, text)
                    .await
                    .map_err(db_error("reading a query"))?;
                let rows = client
                    .query(&statement, &param_refs(params))
                    .await
                    .map_err(db_error("reading a query"))?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    out.push(event_from_row(row, 0)?);
                }
                Ok(out)
            })
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: Version,
        max_count: usize,
        direction: Direction,
    ) -> Result<Vec<RecordedEvent>> {
        self.limits().check_read_count(max_count)?;
        let database = &self.inner.database;
        let text = read_stream_query(&database.sql, direction);
        let name = stream.as_str();
        let from = version_param(from);
        let limit = crate::migrate::to_i64(max_count as u64);
        let rows = database
            .read("reading a stream", |client| async move {
                let stmt = client
                    .prepare_cached(text)
                    .await
                    .map_err(db_error("reading a stream"))?;
                client
                    .query(&stmt, &[&name, &from, &limit])
                    .await
                    .map_err(db_error("reading a stream"))
            })
            .await?;
        stream_rows(stream, rows)
    }

    async fn read_all(
        &self,
        from: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.limits().check_read_count(max_count)?;
        filter.validate()?;
        read_all(&self.inner.database, from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> Result<Vec<RecordedEvent>> {
        self.limits().check_read_count(max_count)?;
        filter.validate()?;
        read_all_backward(&self.inner.database, before, max_count, filter).await
    }

    async fn subscribe(&self, from: SubscribeFrom, filter: ReadFilter) -> Result<Subscription> {
        if *self.inner.shutdown.borrow() {
            return Err(Error::Closed);
        }
        filter.validate()?;
        self.ensure_listener();
        if from == SubscribeFrom::End {
            // "From the end" means the end as committed now, not as last heard.
            self.refresh_head().await?;
        }
        let source: Arc<dyn SubscriptionSource> = Arc::new(PgSource {
            database: self.inner.database.clone(),
            head: self.inner.head.subscribe(),
        });
        Ok(Subscription::new(source, from, filter))
    }

    async fn stream_info(&self, stream: &StreamId) -> Result<Option<StreamInfo>> {
        let database = &self.inner.database;
        let text = &database.sql.stream_head;
        let name = stream.as_str();
        let rows = database
            .read("reading a stream head", |client| async move {
                let stmt = client
                    .prepare_cached(text)
                    .await
                    .map_err(db_error("reading a stream head"))?;
                client
                    .query(&stmt, &[&name])
                    .await
                    .map_err(db_error("reading a stream head"))
            })
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let head = head_from_row(row, 0)?;
        // A row at version 0 that is not tombstoned was only locked by an
        // append that failed: the stream was never written.
        if head.version == 0 && !head.tombstoned {
            return Ok(None);
        }
        let mut info = head.info(stream);
        if !head.tombstoned {
            info.first_readable_version =
                version_from_row(row, 4, "first_readable")?.min(head.version + 1);
        }
        Ok(Some(info))
    }

    /// One index range scan (migration 6 indexes names in byte order)
    /// that stops after the page; names of other categories within the
    /// range, and system streams when they are not asked for, are passed
    /// over.
    async fn list_streams(&self, query: &StreamListQuery) -> Result<StreamPage> {
        query.validate()?;
        let Some(prefix) = query.name_prefix() else {
            return Ok(StreamPage::default());
        };
        let after = query.after.as_ref().map_or("", |a| a.as_str());
        let end = prefix_end(prefix).unwrap_or_else(above_every_name);
        let end = end.as_str();
        let category = query.category.as_deref();
        let system = query.include_system;
        let rows_wanted = i64::try_from(query.page_size() + 1).unwrap_or(i64::MAX);
        let text = &self.inner.database.sql.list_streams;
        let rows = self
            .inner
            .database
            .read("listing streams", |client| async move {
                let stmt = client
                    .prepare_cached(text)
                    .await
                    .map_err(db_error("listing streams"))?;
                client
                    .query(
                        &stmt,
                        &[&after, &prefix, &end, &category, &system, &rows_wanted],
                    )
                    .await
                    .map_err(db_error("listing streams"))
            })
            .await?;
        let streams = rows
            .iter()
            .map(stream_info_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page_of(query, streams))
    }

    async fn delete_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let sql = &self.inner.database.sql;
        let mut client = self
            .inner
            .database
            .pool
            .get()
            .await
            .map_err(|e| PgError::pool("deleting a stream", e))?;
        let fail = |e| -> Error { unknown_outcome("deleting a stream", e) };
        let tx = client.transaction().await.map_err(fail)?;
        let rows = tx
            .query(&sql.lock_stream_for_delete, &[&stream.as_str()])
            .await
            .map_err(fail)?;
        let head = rows.first().map(|r| head_from_row(r, 0)).transpose()?;
        check_readable(stream, head.as_ref(), |h| h)?;
        check_guard(stream, expected, head.as_ref())?;
        tx.execute(&sql.soft_delete, &[&stream.as_str()])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    async fn tombstone_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        let sql = &self.inner.database.sql;
        let mut client = self
            .inner
            .database
            .pool
            .get()
            .await
            .map_err(|e| PgError::pool("tombstoning a stream", e))?;
        let fail = |e| -> Error { unknown_outcome("tombstoning a stream", e) };
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(&sql.ensure_stream, &[&stream.as_str()])
            .await
            .map_err(fail)?;
        let rows = tx
            .query(&sql.lock_stream_for_delete, &[&stream.as_str()])
            .await
            .map_err(fail)?;
        let head = rows.first().map(|r| head_from_row(r, 0)).transpose()?;
        check_guard(stream, expected, head.as_ref())?;
        tx.execute(&sql.tombstone, &[&stream.as_str()])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    /// Immediate: one transaction tombstones the stream and its metadata
    /// stream and deletes their rows, its settings and its snapshots
    /// (`erase.rs`).
    async fn erase_stream(&self, stream: &StreamId, expected: ExpectedVersion) -> Result<()> {
        self.erase(stream, expected).await
    }

    async fn head_position(&self) -> Result<Position> {
        self.refresh_head().await
    }

    fn health(&self) -> Result<Option<Position>> {
        // The listener is what keeps contact with the database between
        // requests (its own connection, not the pool's); health starts it
        // when nothing else has.
        if tokio::runtime::Handle::try_current().is_ok() {
            self.ensure_listener();
        }
        if !self.inner.head.reachable() {
            return Err(Error::Backend(
                "the database did not answer the store's last contact".into(),
            ));
        }
        Ok(Some(self.inner.head.current()))
    }

    fn limits(&self) -> &Limits {
        &self.inner.database.config.limits
    }

    fn durable_syncs(&self) -> Option<u64> {
        Some(
            self.inner
                .database
                .stats
                .writing_commits
                .load(AtomicOrdering::Relaxed),
        )
    }
}

/// A write's database failure; when the connection dropped, the outcome is
/// unknown and the message says so.
pub(crate) fn unknown_outcome(context: &str, e: tokio_postgres::Error) -> Error {
    let connection = is_connection_error(&e);
    let mut message = strata_core::error::error_chain(&PgError::db(context, e));
    if connection {
        message.push_str(" (the connection dropped: the outcome is unknown)");
    }
    Error::Backend(message)
}

/// A stream's description from a row of `read/list_streams.sql`: its
/// name, its head (`head_from_row`) and its first readable version.
fn stream_info_from_row(row: &tokio_postgres::Row) -> Result<StreamInfo> {
    let name: &str = row.try_get(0).map_err(|e| Error::Corrupt {
        location: "streams.stream_id".into(),
        reason: e.to_string(),
    })?;
    let stream = StreamId::any(name).map_err(|e| Error::Corrupt {
        location: "streams.stream_id".into(),
        reason: e.to_string(),
    })?;
    let head = head_from_row(row, 1)?;
    let mut info = head.info(&stream);
    if !head.tombstoned {
        info.first_readable_version =
            version_from_row(row, 5, "first_readable")?.min(head.version + 1);
    }
    Ok(info)
}
