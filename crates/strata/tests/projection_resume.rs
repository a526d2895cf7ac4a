//! A projection killed mid-catch-up resumes from its checkpoint, gets the
//! events since then again (at least once), and ends equal to a
//! from-scratch rebuild.

// Helpers outside `#[test]` functions unwrap too; clippy.toml only exempts the tests.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strata::{
    async_trait, AppendResult, CheckpointStore, Direction, EventStore, ExpectedVersion, Limits,
    MemoryCheckpointStore, MemoryStore, NewEvent, Position, Projection, ProjectionError,
    ProjectionRunner, ProjectionStatus, ReadFilter, RecordedEvent, RunnerConfig, StreamAppend,
    StreamId, StreamInfo, SubscribeFrom, Subscription, Version,
};
use tokio::sync::Notify;

/// A read model kept "outside the process": it survives the runner.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Table {
    /// stream → (last version folded in, sum of `n`, events folded)
    rows: BTreeMap<String, (Version, u64, u64)>,
    /// Calls to `update`, duplicates included.
    deliveries: u64,
    /// Position passed to the last `commit`.
    committed: Option<Position>,
}

struct TableProjection {
    table: Arc<Mutex<Table>>,
    /// Panics (a crash) when asked to fold the event at this position.
    crash_at: Option<Position>,
}

impl TableProjection {
    fn new(table: Arc<Mutex<Table>>) -> Self {
        TableProjection {
            table,
            crash_at: None,
        }
    }
}

#[async_trait]
impl Projection for TableProjection {
    fn name(&self) -> &str {
        "sums"
    }

    fn filter(&self) -> ReadFilter {
        ReadFilter::all().category("t")
    }

    fn update(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if self.crash_at == Some(event.position) {
            panic!("simulated crash at position {}", event.position);
        }
        let n: serde_json::Value = event
            .json()
            .map_err(|e| ProjectionError::failed(e.to_string()))?;
        let n = n["n"].as_u64().unwrap_or(0);
        let mut table = self.table.lock();
        table.deliveries += 1;
        let row = table
            .rows
            .entry(event.stream_id.as_str().to_owned())
            .or_default();
        // Idempotent: an event at or below the row's version was folded in.
        if event.version <= row.0 {
            return Ok(());
        }
        *row = (event.version, row.1 + n, row.2 + 1);
        Ok(())
    }

    fn reset(&mut self) {
        let mut table = self.table.lock();
        table.rows.clear();
        table.committed = None;
    }

    fn is_durable(&self) -> bool {
        true
    }

    async fn commit(&mut self, position: Position) -> Result<(), ProjectionError> {
        self.table.lock().committed = Some(position);
        Ok(())
    }
}

const STREAMS: usize = 20;
const ROUNDS: usize = 50;

/// 20 `t-*` streams, interleaved, plus noise in another category.
async fn seed(store: &MemoryStore) -> Position {
    for round in 0..ROUNDS {
        for s in 0..STREAMS {
            let stream = StreamId::new(format!("t-{s}")).unwrap();
            let event =
                NewEvent::json("Added", &serde_json::json!({ "n": round * STREAMS + s })).unwrap();
            store
                .append(&stream, ExpectedVersion::Any, vec![event])
                .await
                .unwrap();
        }
        let noise = StreamId::new("noise-1").unwrap();
        store
            .append(
                &noise,
                ExpectedVersion::Any,
                vec![NewEvent::json_bytes("Noise", "{}")],
            )
            .await
            .unwrap();
    }
    store.head_position().await.unwrap()
}

fn config() -> RunnerConfig {
    RunnerConfig {
        page_events: 64,
        live_batch_events: 64,
        checkpoint_every_events: 150,
        checkpoint_interval_ms: 60_000,
    }
}

async fn rebuilt_from_scratch(store: &MemoryStore) -> Table {
    let table = Arc::new(Mutex::new(Table::default()));
    let mut runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config());
    let report = runner.rebuild().await.unwrap();
    assert_eq!(report.events, (STREAMS * ROUNDS) as u64);
    let t = table.lock().clone();
    assert_eq!(
        t.deliveries,
        (STREAMS * ROUNDS) as u64,
        "a rebuild delivers once"
    );
    t
}

#[tokio::test]
async fn a_projection_that_crashes_mid_catch_up_resumes_and_equals_a_rebuild() {
    let store = MemoryStore::new();
    let head = seed(&store).await;
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let table = Arc::new(Mutex::new(Table::default()));

    // First run: crash (panic) two thirds of the way through.
    let crash_at = Position(head.0 * 2 / 3);
    let mut crashing = TableProjection::new(Arc::clone(&table));
    crashing.crash_at = Some(crash_at);
    let running = ProjectionRunner::new(store.clone(), checkpoints.clone(), crashing)
        .with_config(config())
        .spawn();
    let shared = running.projection().clone();
    shared
        .watch()
        .wait_for(|p| !p.status.is_running())
        .await
        .unwrap();
    let stopped = running.stop().await;
    assert!(stopped.is_err(), "the runner crashed: {stopped:?}");
    assert!(matches!(
        shared.progress().status,
        ProjectionStatus::Failed { .. }
    ));
    let saved = checkpoints
        .load("sums")
        .await
        .unwrap()
        .expect("a checkpoint was saved");
    assert!(
        saved > Position::START && saved < crash_at,
        "checkpoint {saved} should be mid-way, before the crash at {crash_at}"
    );
    let before = table.lock().clone();
    assert_eq!(
        before.committed,
        Some(saved),
        "commit precedes every checkpoint"
    );
    // Events after the checkpoint were folded in but not checkpointed: they
    // will be delivered again.
    let folded: u64 = before.rows.values().map(|r| r.2).sum();
    assert!(folded > 0);

    // Second run, a new process: resumes after the checkpoint.
    let mut runner = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config());
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.from, saved, "resumed from the checkpoint");
    assert_eq!(report.to, head);
    assert_eq!(checkpoints.load("sums").await.unwrap(), Some(head));

    let resumed = table.lock().clone();
    assert!(
        resumed.deliveries > (STREAMS * ROUNDS) as u64,
        "some events were delivered twice (at least once): {}",
        resumed.deliveries
    );
    let scratch = rebuilt_from_scratch(&store).await;
    assert_eq!(resumed.rows, scratch.rows);
}

/// A store whose `read_all` hangs for ever after a number of calls, so
/// that a runner can be killed while it waits in the middle of catching up.
#[derive(Clone)]
struct StallingStore {
    inner: MemoryStore,
    reads_left: Arc<AtomicUsize>,
    stalled: Arc<Notify>,
    stalling: Arc<AtomicBool>,
}

#[async_trait]
impl EventStore for StallingStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> strata::Result<AppendResult> {
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
        if self.stalling.load(Ordering::SeqCst)
            && self
                .reads_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
        {
            self.stalled.notify_one();
            std::future::pending::<()>().await;
        }
        self.inner.read_all(from, max_count, filter).await
    }

    async fn read_all_backward(
        &self,
        before: Position,
        max_count: usize,
        filter: &ReadFilter,
    ) -> strata::Result<Vec<RecordedEvent>> {
        self.inner
            .read_all_backward(before, max_count, filter)
            .await
    }

    async fn subscribe(
        &self,
        from: SubscribeFrom,
        filter: ReadFilter,
    ) -> strata::Result<Subscription> {
        self.inner.subscribe(from, filter).await
    }

    async fn stream_info(&self, stream: &StreamId) -> strata::Result<Option<StreamInfo>> {
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

    fn limits(&self) -> &Limits {
        self.inner.limits()
    }
}

#[tokio::test]
async fn a_projection_aborted_while_reading_resumes_and_equals_a_rebuild() {
    let memory = MemoryStore::new();
    let head = seed(&memory).await;
    let store = StallingStore {
        inner: memory.clone(),
        reads_left: Arc::new(AtomicUsize::new(7)),
        stalled: Arc::new(Notify::new()),
        stalling: Arc::new(AtomicBool::new(true)),
    };
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let table = Arc::new(Mutex::new(Table::default()));

    let running = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config())
    .spawn();
    // Seven pages of 64 were read; the eighth read hangs: kill the process.
    store.stalled.notified().await;
    let shared = running.projection().clone();
    let at_kill = shared.progress().position;
    running.abort().await;
    let saved = checkpoints
        .load("sums")
        .await
        .unwrap()
        .expect("checkpointed");
    assert!(saved > Position::START && saved <= at_kill && at_kill < head);

    store.stalling.store(false, Ordering::SeqCst);
    let mut runner = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config());
    let report = runner.catch_up().await.unwrap();
    assert_eq!((report.from, report.to), (saved, head));

    let scratch = rebuilt_from_scratch(&memory).await;
    assert_eq!(table.lock().rows, scratch.rows);
}

#[tokio::test]
async fn a_clean_stop_checkpoints_everything_and_a_restart_redelivers_nothing() {
    let store = MemoryStore::new();
    let head = seed(&store).await;
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let table = Arc::new(Mutex::new(Table::default()));

    let running = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config())
    .spawn();
    running
        .projection()
        .wait_for(head, Duration::from_secs(10))
        .await
        .unwrap();
    let report = running.stop().await.unwrap();
    assert_eq!(report.position, head);
    assert_eq!(checkpoints.load("sums").await.unwrap(), Some(head));
    let deliveries = table.lock().deliveries;
    assert_eq!(deliveries, (STREAMS * ROUNDS) as u64);

    // Restart: nothing new, nothing delivered again.
    let mut runner = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    );
    let report = runner.catch_up().await.unwrap();
    assert_eq!(report.events, 0);
    assert_eq!(table.lock().deliveries, deliveries);
}

#[tokio::test]
async fn a_rebuild_of_a_live_projection_reports_progress_and_goes_on_live() {
    let store = MemoryStore::new();
    let head = seed(&store).await;
    let table = Arc::new(Mutex::new(Table::default()));
    let running = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(config())
    .spawn();
    let shared = running.projection().clone();
    shared
        .wait_for(head, Duration::from_secs(10))
        .await
        .unwrap();
    let generation = shared.progress().generation;
    let before = table.lock().rows.clone();

    let mut watch = shared.watch();
    let report = running.rebuild().await.unwrap();
    assert_eq!((report.from, report.to), (Position::START, head));
    assert_eq!(report.events, (STREAMS * ROUNDS) as u64);
    assert!(report.pages > 1);
    let progress = watch.borrow_and_update().clone();
    assert_eq!(progress.generation, generation + 1);
    assert_eq!(table.lock().rows, before);

    // Still live after the rebuild.
    let s = StreamId::new("t-0").unwrap();
    let r = store
        .append(
            &s,
            ExpectedVersion::Any,
            vec![NewEvent::json("Added", &serde_json::json!({"n": 1})).unwrap()],
        )
        .await
        .unwrap();
    shared
        .wait_for(r.last_position, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(shared.progress().status, ProjectionStatus::Live);
    assert_eq!(table.lock().rows["t-0"].2, ROUNDS as u64 + 1);
    running.stop().await.unwrap();
}

/// `abort` is a crash: a runner that folded everything but saved no
/// checkpoint yet saves none on abort (a clean stop would), and once
/// `abort().await` returns the task has ended and dropped its checkpoint
/// store — nothing of it is still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_saves_no_last_checkpoint_and_releases_everything_when_awaited() {
    let store = MemoryStore::new();
    let head = seed(&store).await;
    let checkpoints = Arc::new(MemoryCheckpointStore::new());
    let table = Arc::new(Mutex::new(Table::default()));
    let running = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::clone(&table)),
    )
    .with_config(RunnerConfig {
        // No checkpoint before the end: only a clean stop would save one.
        checkpoint_every_events: u64::MAX,
        checkpoint_interval_ms: 3_600_000,
        ..config()
    })
    .spawn();
    let shared = running.projection().clone();
    shared
        .wait_for(head, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(checkpoints.load("sums").await.unwrap(), None);

    running.abort().await;
    assert_eq!(
        Arc::strong_count(&checkpoints),
        1,
        "the aborted task still holds the checkpoint store"
    );
    assert_eq!(
        checkpoints.load("sums").await.unwrap(),
        None,
        "an abort saved a last checkpoint"
    );
    assert!(
        matches!(shared.progress().status, ProjectionStatus::Failed { .. }),
        "an aborted runner is not reported as cleanly stopped: {:?}",
        shared.progress().status
    );

    // The next runner starts from the last saved checkpoint: the start.
    let mut runner = ProjectionRunner::new(
        store.clone(),
        checkpoints.clone(),
        TableProjection::new(Arc::new(Mutex::new(Table::default()))),
    )
    .with_config(config());
    let report = runner.catch_up().await.unwrap();
    assert_eq!((report.from, report.to), (Position::START, head));
}
