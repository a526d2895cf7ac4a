//! The event processor: handlers registered per
//! event type, plus projections, fed from `$all` with a checkpoint.
//!
//! - **Batches** (`process_event_batch`):
//!   each handler receives its events in slices of at most
//!   [`ProcessorConfig::batch_events`] through [`EventHandler::handle_batch`].
//! - **Parallel** (`ParallelProcess(E, n)`): with
//!   [`ProcessorConfig::workers`] `> 1` every page is split into `n`
//!   partitions by a hash of the stream id ([`partition_of`]) and each
//!   partition is queued to one of `n` long-lived worker tasks (at most
//!   [`WORKER_QUEUE_JOBS`] queued per worker). A stream always lands in the
//!   same partition and a worker handles its queue in order, so each
//!   stream's events reach each handler in stream order. Workers never wait
//!   for each other; the checkpoint advances over a page only once every
//!   partition of it and of every page before it is done, so it stays one
//!   position.
//! - **Failures**: a handler that fails on an event is retried on that
//!   event alone, as the [`RetryPolicy`] says; if it still fails the event
//!   is *parked* for that handler (stored with its error and position in a
//!   [`ParkedStore`]) and the handler goes on with the next events. Nobody
//!   else waits. [`EventProcessor::parked`] lists them,
//!   [`EventProcessor::replay_parked`] tries them again.
//!
//! **Queries**: [`EventProcessor::with_query`] narrows the handlers to the
//! events matching a DCB [`Query`] (`docs/adr/0022-dynamic-consistency-boundaries.md`).
//! The processor then catches up with the store's query reads and follows
//! a query-filtered subscription; the events it skips still move its
//! checkpoint, so it resumes after them without handling anything twice.
//!
//! Projections attached to a processor are folded on the processor's own
//! task, in position order, before the page's handlers run (a fold is cheap
//! and needs the global order). A projection that fails on an event is not
//! retried (a fold is deterministic): the event is parked under the
//! projection's name.
//!
//! Delivery is at least once: after a crash the processor resumes after its
//! last checkpoint and handlers see the events since then again. Handlers
//! with side effects make that harmless with the event id (every
//! [`RecordedEvent::id`] is unique) or the stream version.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use strata_core::dcb::Query;
use strata_core::{async_trait, CheckpointStore, EventStore, Position, ReadFilter, RecordedEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::feed::{Batch, Feed};
use crate::parking::{MemoryParkedStore, ParkedEvent, ParkedStore};
use crate::projection::{Projection, ProjectionError};
use crate::retry::RetryPolicy;
use crate::runner::{
    retry_delay, retryable, CatchUpReport, SharedProjection, WaitError, DEFAULT_PAGE_EVENTS,
    MAX_STORE_RETRIES,
};

/// What a handler returns when it fails: any error.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Default for [`ProcessorConfig::batch_events`].
pub const DEFAULT_BATCH_EVENTS: usize = 64;
/// Most workers a processor may run.
pub const MAX_WORKERS: usize = 256;
/// Default for [`ProcessorConfig::checkpoint_every_events`].
pub const DEFAULT_PROCESSOR_CHECKPOINT_EVERY_EVENTS: u64 = 1_000;
/// Default for [`ProcessorConfig::checkpoint_interval_ms`].
pub const DEFAULT_PROCESSOR_CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// How many control commands may wait for a running processor.
pub const PROCESSOR_CONTROL_QUEUE_COMMANDS: usize = 8;
/// Most parked events one replay call looks at, by default.
pub const DEFAULT_REPLAY_LIMIT: usize = 1_000;

/// A handler failed on `events[index]`; the events before it were handled.
#[derive(Debug)]
pub struct BatchFailure {
    /// Index, in the batch, of the event that failed.
    pub index: usize,
    /// Why.
    pub error: HandlerError,
}

/// Something that reacts to events: sends mail, calls a service, writes
/// elsewhere. Register it for event types with
/// [`EventProcessor::on`].
///
/// ```
/// use strata::processor::{EventHandler, HandlerError};
/// use strata::{async_trait, RecordedEvent};
///
/// struct Notifier;
///
/// #[async_trait]
/// impl EventHandler for Notifier {
///     fn name(&self) -> &str { "notifier" }
///     async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
///         if event.data.is_empty() {
///             return Err("nothing to send".into());
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// Its name, unique within a processor: parked events are filed under it.
    fn name(&self) -> &str;

    /// Handles one event. It may be called again for an event it already
    /// handled (at-least-once delivery, retries, replays).
    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError>;

    /// Handles a batch of events, in order. Override it to amortize work over a batch
    /// (one round trip, one transaction); on failure, say which event
    /// failed: the ones before it count as handled, the failing one is
    /// retried alone and the rest are handed over again.
    async fn handle_batch(&self, events: &[&RecordedEvent]) -> Result<(), BatchFailure> {
        for (index, event) in events.iter().enumerate() {
            self.handle(event)
                .await
                .map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}

/// A handler made of a synchronous closure; see [`handler_fn`].
pub struct FnHandler<F> {
    name: String,
    f: F,
}

impl<F> std::fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnHandler")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A handler named `name` that calls `f` on each event.
///
/// ```
/// let h = strata::processor::handler_fn("log", |e: &strata::RecordedEvent| {
///     tracing::info!(position = %e.position, "seen");
///     Ok(())
/// });
/// # let _ = h;
/// ```
pub fn handler_fn<F>(name: impl Into<String>, f: F) -> FnHandler<F>
where
    F: Fn(&RecordedEvent) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    FnHandler {
        name: name.into(),
        f,
    }
}

#[async_trait]
impl<F> EventHandler for FnHandler<F>
where
    F: Fn(&RecordedEvent) -> Result<(), HandlerError> + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        (self.f)(event)
    }

    async fn handle_batch(&self, events: &[&RecordedEvent]) -> Result<(), BatchFailure> {
        for (index, event) in events.iter().enumerate() {
            (self.f)(event).map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}

/// How an [`EventProcessor`] reads, batches, parallelizes and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorConfig {
    /// Most events handed to one `handle_batch` call (`k`; 1
    /// means one event at a time). Default [`DEFAULT_BATCH_EVENTS`].
    pub batch_events: usize,
    /// Partitions handled at once (`n`); 1 handles everything on
    /// the processor's own task. At most [`MAX_WORKERS`]. Real parallelism
    /// needs a multi-threaded Tokio runtime. Default 1.
    pub workers: usize,
    /// Events per page read from the store (clamped to its
    /// `max_read_count`); one page is in memory at a time. Default
    /// [`DEFAULT_PAGE_EVENTS`].
    pub page_events: usize,
    /// Save a checkpoint once this many events were processed since the
    /// last one. Default [`DEFAULT_PROCESSOR_CHECKPOINT_EVERY_EVENTS`].
    pub checkpoint_every_events: u64,
    /// Save a checkpoint once this many milliseconds passed since the last
    /// one, if there is progress. Default [`DEFAULT_PROCESSOR_CHECKPOINT_INTERVAL_MS`].
    pub checkpoint_interval_ms: u64,
    /// How a failing handler is retried before its event is parked.
    pub retry: RetryPolicy,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            batch_events: DEFAULT_BATCH_EVENTS,
            workers: 1,
            page_events: DEFAULT_PAGE_EVENTS,
            checkpoint_every_events: DEFAULT_PROCESSOR_CHECKPOINT_EVERY_EVENTS,
            checkpoint_interval_ms: DEFAULT_PROCESSOR_CHECKPOINT_INTERVAL_MS,
            retry: RetryPolicy::default(),
        }
    }
}

/// What stops an event processor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessorError {
    /// The event store or the checkpoint store failed.
    #[error(transparent)]
    Store(#[from] strata_core::Error),

    /// An event could not be parked (the parked store is full or failing),
    /// so the processor stops rather than lose it.
    #[error("processor `{processor}` cannot park the event at position {position} for `{handler}`: {source}")]
    Park {
        /// The processor.
        processor: String,
        /// The handler that failed on the event.
        handler: String,
        /// The event's position.
        position: Position,
        /// Why parking failed.
        #[source]
        source: strata_core::Error,
    },

    /// A worker task panicked (a handler panicked: return an error instead).
    #[error(
        "a worker of processor `{processor}` panicked; handlers should return errors, not panic"
    )]
    WorkerPanicked {
        /// The processor.
        processor: String,
    },

    /// The processor is not running any more.
    #[error("processor `{processor}` is not running: {reason}")]
    Stopped {
        /// The processor.
        processor: String,
        /// Why.
        reason: String,
    },

    /// The configuration cannot work.
    #[error("invalid processor configuration: {0}")]
    Config(String),
}

/// Counters of a processor, since it was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessorStats {
    /// Events read and processed.
    pub events: u64,
    /// `handle_batch` and `handle` calls.
    pub handler_calls: u64,
    /// Retries of failed events.
    pub retries: u64,
    /// Events parked.
    pub parked: u64,
    /// Parked events that a replay handled successfully.
    pub recovered: u64,
}

#[derive(Debug, Default)]
struct Stats {
    events: AtomicU64,
    handler_calls: AtomicU64,
    retries: AtomicU64,
    parked: AtomicU64,
    recovered: AtomicU64,
}

impl Stats {
    fn read(&self) -> ProcessorStats {
        ProcessorStats {
            events: self.events.load(Ordering::Relaxed),
            handler_calls: self.handler_calls.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
            recovered: self.recovered.load(Ordering::Relaxed),
        }
    }
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// What a replay of parked events did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Parked events tried.
    pub replayed: usize,
    /// Those handled successfully (and removed from the parked list).
    pub recovered: usize,
    /// Those that failed again (still parked, with the new error).
    pub still_parked: usize,
}

/// A projection as a processor sees it.
#[async_trait]
trait ProjectionSink: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn filter(&self) -> &ReadFilter;
    fn durable(&self) -> bool;
    async fn position(&self) -> Position;
    /// Folds the events it wants; returns the ones that failed.
    async fn apply(
        &self,
        events: &[RecordedEvent],
        considered: Position,
    ) -> Vec<(usize, ProjectionError)>;
    async fn replay(&self, event: &RecordedEvent) -> Result<(), ProjectionError>;
}

#[async_trait]
impl<P: Projection> ProjectionSink for SharedProjection<P> {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn filter(&self) -> &ReadFilter {
        &self.inner.filter
    }

    fn durable(&self) -> bool {
        self.inner.durable
    }

    async fn position(&self) -> Position {
        self.inner.slot.read().await.position
    }

    async fn apply(
        &self,
        events: &[RecordedEvent],
        considered: Position,
    ) -> Vec<(usize, ProjectionError)> {
        let mut failures = Vec::new();
        let mut applied = 0u64;
        let mut slot = self.inner.slot.write().await;
        for (i, e) in events.iter().enumerate() {
            if e.position <= slot.position || !self.inner.wants(e) {
                continue;
            }
            match slot.projection.update(e) {
                Ok(()) => {
                    slot.state_position = e.position;
                    applied += 1;
                }
                Err(err) => failures.push((i, err)),
            }
        }
        slot.position = slot.position.max(considered);
        let (position, state_position) = (slot.position, slot.state_position);
        drop(slot);
        let last_event_at = events.last().map(|e| e.recorded_at);
        self.publish(|p| {
            p.position = position;
            p.state_position = state_position;
            p.events_applied += applied;
            if last_event_at.is_some() {
                p.last_event_at = last_event_at;
            }
        });
        failures
    }

    async fn replay(&self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.inner.slot.write().await.projection.update(event)
    }
}

#[derive(Clone)]
struct Engine {
    name: String,
    handlers: Vec<Arc<dyn EventHandler>>,
    by_type: HashMap<String, Vec<usize>>,
    any: Vec<usize>,
    projections: Vec<Arc<dyn ProjectionSink>>,
    /// Only events matching it reach the handlers.
    query: Option<Query>,
    parked: Arc<dyn ParkedStore>,
    config: ProcessorConfig,
    stats: Arc<Stats>,
}

/// A stable hash of a stream name (FNV-1a): the partition of a stream must
/// not change between runs or processes.
fn stream_hash(stream: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The partition (worker) of `stream` among `workers` (at least 1).
pub fn partition_of(stream: &str, workers: usize) -> usize {
    (stream_hash(stream) % workers.max(1) as u64) as usize
}

impl Engine {
    fn filter(&self) -> ReadFilter {
        if !self.projections.is_empty() || !self.any.is_empty() || self.by_type.is_empty() {
            return ReadFilter::all();
        }
        let mut types: Vec<&String> = self.by_type.keys().collect();
        types.sort();
        ReadFilter::all().event_types(types.into_iter().cloned())
    }

    /// The query the feed reads with: the handlers' own, unless projections
    /// (which keep their own filters and queries) need every event.
    fn feed_query(&self) -> Option<Query> {
        if self.projections.is_empty() {
            self.query.clone()
        } else {
            None
        }
    }

    /// Whether the handlers get `event` (the query, if any, matches it).
    fn handles(&self, event: &RecordedEvent) -> bool {
        self.query.as_ref().is_none_or(|q| q.matches(event))
    }

    fn workers(&self) -> usize {
        self.config.workers.clamp(1, MAX_WORKERS)
    }

    /// Folds a page into the projections, in order, parking what fails.
    async fn project(
        &self,
        events: &[RecordedEvent],
        considered: Position,
    ) -> Result<(), ProcessorError> {
        for sink in &self.projections {
            for (i, err) in sink.apply(events, considered).await {
                self.park(sink.name(), &events[i], err.to_string(), 1)
                    .await?;
            }
        }
        bump(&self.stats.events, events.len() as u64);
        Ok(())
    }

    /// Splits events into `workers` partitions by stream, keeping their order.
    fn partition(&self, events: Vec<RecordedEvent>, workers: usize) -> Vec<Vec<RecordedEvent>> {
        let mut parts: Vec<Vec<RecordedEvent>> = (0..workers)
            .map(|_| Vec::with_capacity(events.len() / workers + 1))
            .collect();
        for e in events {
            let p = partition_of(e.stream_id.as_str(), workers);
            parts[p].push(e);
        }
        parts
    }

    /// Projections first (in order, here), then the handlers, partitioned
    /// over short-lived tasks (the page is a barrier).
    async fn process_page(
        self: &Arc<Self>,
        events: Vec<RecordedEvent>,
        considered: Position,
    ) -> Result<(), ProcessorError> {
        self.project(&events, considered).await?;
        if self.handlers.is_empty() || events.is_empty() {
            return Ok(());
        }
        let workers = self.workers();
        if workers == 1 {
            return self.process(&events).await;
        }
        let parts = self.partition(events, workers);
        let mut tasks = Vec::with_capacity(workers);
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let engine = Arc::clone(self);
            tasks.push(tokio::spawn(async move {
                let result = engine.process(&part).await;
                // Handed back so that they are dropped here: their reference
                // counts were raised on this task's core, and dropping them on
                // a worker's core would pull those cache lines across.
                (result, part)
            }));
        }
        let mut first_error = None;
        let mut done = Vec::with_capacity(tasks.len());
        for task in tasks {
            let result = match task.await {
                Ok((r, part)) => {
                    done.push(part);
                    r
                }
                Err(_) => Err(ProcessorError::WorkerPanicked {
                    processor: self.name.clone(),
                }),
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        drop(done);
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Handles one partition's events, in order, batch by batch.
    async fn process(&self, events: &[RecordedEvent]) -> Result<(), ProcessorError> {
        let batch_events = self.config.batch_events.max(1);
        let mut per_handler: Vec<Vec<&RecordedEvent>> = vec![Vec::new(); self.handlers.len()];
        for chunk in events.chunks(batch_events) {
            for list in per_handler.iter_mut() {
                list.clear();
            }
            for e in chunk.iter().filter(|e| self.handles(e)) {
                if let Some(hs) = self.by_type.get(e.event_type.as_str()) {
                    for &h in hs {
                        per_handler[h].push(e);
                    }
                }
                for &h in &self.any {
                    per_handler[h].push(e);
                }
            }
            for (h, list) in per_handler.iter().enumerate() {
                if !list.is_empty() {
                    self.run_handler(h, list).await?;
                }
            }
        }
        Ok(())
    }

    async fn run_handler(&self, h: usize, events: &[&RecordedEvent]) -> Result<(), ProcessorError> {
        let handler = &self.handlers[h];
        let mut rest = events;
        while !rest.is_empty() {
            bump(&self.stats.handler_calls, 1);
            match handler.handle_batch(rest).await {
                Ok(()) => break,
                Err(BatchFailure { index, error }) => {
                    // A handler that names an index out of range failed on
                    // the last event: nothing is skipped unhandled.
                    let index = index.min(rest.len() - 1);
                    self.retry_or_park(handler.as_ref(), rest[index], error)
                        .await?;
                    rest = &rest[index + 1..];
                }
            }
        }
        Ok(())
    }

    /// Retries `event` alone; parks it once the retries are used up.
    async fn retry_or_park(
        &self,
        handler: &dyn EventHandler,
        event: &RecordedEvent,
        first: HandlerError,
    ) -> Result<(), ProcessorError> {
        let mut last = first;
        let mut attempts = 1u32;
        let max = self.config.retry.max_attempts.max(1);
        while attempts < max {
            let delay = self.config.retry.delay_before_retry(attempts);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            attempts += 1;
            bump(&self.stats.retries, 1);
            bump(&self.stats.handler_calls, 1);
            match handler.handle(event).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        self.park(handler.name(), event, last.to_string(), attempts)
            .await
    }

    async fn park(
        &self,
        handler: &str,
        event: &RecordedEvent,
        error: String,
        attempts: u32,
    ) -> Result<(), ProcessorError> {
        tracing::warn!(
            processor = %self.name,
            handler,
            position = %event.position,
            stream = %event.stream_id,
            version = event.version,
            event_type = %event.event_type,
            attempts,
            %error,
            "parking event"
        );
        self.parked
            .park(ParkedEvent {
                processor: self.name.clone(),
                handler: handler.to_owned(),
                event: event.clone(),
                error,
                attempts,
                parked_at: Utc::now(),
            })
            .await
            .map_err(|source| ProcessorError::Park {
                processor: self.name.clone(),
                handler: handler.to_owned(),
                position: event.position,
                source,
            })?;
        bump(&self.stats.parked, 1);
        Ok(())
    }

    async fn replay_parked(&self, limit: usize) -> Result<ReplayReport, ProcessorError> {
        let parked = self.parked.list(&self.name, limit).await?;
        let mut report = ReplayReport::default();
        for p in parked {
            report.replayed += 1;
            let outcome = if let Some(h) = self.handlers.iter().find(|h| h.name() == p.handler) {
                let mut result = Err(String::new());
                let max = self.config.retry.max_attempts.max(1);
                let mut tried = 0u32;
                while tried < max {
                    if tried > 0 {
                        let delay = self.config.retry.delay_before_retry(tried);
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                    }
                    tried += 1;
                    bump(&self.stats.handler_calls, 1);
                    match h.handle(&p.event).await {
                        Ok(()) => {
                            result = Ok(());
                            break;
                        }
                        Err(e) => result = Err(e.to_string()),
                    }
                }
                (result, tried)
            } else if let Some(s) = self.projections.iter().find(|s| s.name() == p.handler) {
                (s.replay(&p.event).await.map_err(|e| e.to_string()), 1)
            } else {
                (
                    Err(format!(
                        "no handler or projection named `{}` is registered",
                        p.handler
                    )),
                    0,
                )
            };
            match outcome {
                (Ok(()), _) => {
                    self.parked
                        .unpark(&self.name, &p.handler, p.event.id)
                        .await?;
                    bump(&self.stats.recovered, 1);
                    report.recovered += 1;
                }
                (Err(error), tried) => {
                    let attempts = p.attempts.saturating_add(tried);
                    self.park(&p.handler, &p.event, error, attempts).await?;
                    report.still_parked += 1;
                }
            }
        }
        Ok(report)
    }
}

/// Most partitions of pages queued for one worker of a running processor:
/// with `workers` workers, at most `workers × WORKER_QUEUE_JOBS` partitions
/// (about that many pages) are in memory besides the one being read.
pub const WORKER_QUEUE_JOBS: usize = 4;

/// One page's partition for one worker.
struct Job {
    seq: u64,
    events: Vec<RecordedEvent>,
}

/// A worker's report on a job; the events come back to be dropped on the
/// reading task (their reference counts were raised on its core).
struct Done {
    seq: u64,
    result: Result<(), ProcessorError>,
    _events: Vec<RecordedEvent>,
}

/// A page whose partitions are being handled.
struct InFlight {
    seq: u64,
    remaining: usize,
    considered: Position,
    events: u64,
}

/// The next report of a pool's workers (never, without a pool).
async fn next_done(pool: &mut Option<WorkerPool>) -> Option<Done> {
    match pool {
        Some(pool) => pool.done.recv().await,
        None => std::future::pending().await,
    }
}

/// Long-lived workers, one per partition, each with a bounded queue, so
/// that workers never wait for each other between pages.
struct WorkerPool {
    senders: Vec<mpsc::Sender<Job>>,
    done: mpsc::UnboundedReceiver<Done>,
    tasks: Vec<JoinHandle<()>>,
    in_flight: std::collections::VecDeque<InFlight>,
    next_seq: u64,
}

impl WorkerPool {
    fn start(engine: &Arc<Engine>, workers: usize) -> Self {
        // Unbounded by type, bounded by construction: at most one report
        // per queued job.
        let (done_tx, done) = mpsc::unbounded_channel();
        let mut senders = Vec::with_capacity(workers);
        let mut tasks = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, mut rx) = mpsc::channel::<Job>(WORKER_QUEUE_JOBS);
            let engine = Arc::clone(engine);
            let done_tx = done_tx.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(job) = rx.recv().await {
                    let result = AssertUnwindSafe(engine.process(&job.events))
                        .catch_unwind()
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProcessorError::WorkerPanicked {
                                processor: engine.name.clone(),
                            })
                        });
                    let failed = result.is_err();
                    let _ = done_tx.send(Done {
                        seq: job.seq,
                        result,
                        _events: job.events,
                    });
                    if failed {
                        break;
                    }
                }
            }));
            senders.push(tx);
        }
        WorkerPool {
            senders,
            done,
            tasks,
            in_flight: std::collections::VecDeque::new(),
            next_seq: 0,
        }
    }

    fn mark(&mut self, done: Done) -> Result<(), ProcessorError> {
        done.result?;
        if let Some(page) = self.in_flight.iter_mut().find(|p| p.seq == done.seq) {
            page.remaining = page.remaining.saturating_sub(1);
        }
        Ok(())
    }

    /// Pages at the front whose partitions are all done, in order.
    fn completed(&mut self) -> Vec<InFlight> {
        let mut out = Vec::new();
        while self.in_flight.front().is_some_and(|p| p.remaining == 0) {
            if let Some(p) = self.in_flight.pop_front() {
                out.push(p);
            }
        }
        out
    }
}

/// Handlers per event type plus projections, fed from `$all`.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use strata::processor::{handler_fn, EventProcessor, ProcessorConfig};
/// use strata::*;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let s = StreamId::new("account-1").unwrap();
/// store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("MoneyDeposited", "{}")]).await.unwrap();
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let counter = Arc::clone(&seen);
/// let mut processor = EventProcessor::new("mailer", store, Arc::new(MemoryCheckpointStore::new()))
///     .with_config(ProcessorConfig { batch_events: 100, workers: 2, ..Default::default() })
///     .on("MoneyDeposited", handler_fn("receipt", move |_e: &RecordedEvent| {
///         counter.fetch_add(1, Ordering::Relaxed);
///         Ok(())
///     }));
/// let report = processor.catch_up().await.unwrap();
/// assert_eq!(report.events, 1);
/// assert_eq!(seen.load(Ordering::Relaxed), 1);
/// assert!(processor.parked(10).await.unwrap().is_empty());
/// # });
/// ```
pub struct EventProcessor<S> {
    engine: Arc<Engine>,
    checkpoints: Arc<dyn CheckpointStore>,
    feed: Feed<S>,
    started: bool,
    last_saved: Option<Position>,
    since_checkpoint: u64,
    last_checkpoint_at: Instant,
    checkpoints_saved: u64,
    position: watch::Sender<Position>,
    pool: Option<WorkerPool>,
}

impl<S> std::fmt::Debug for EventProcessor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventProcessor")
            .field("name", &self.engine.name)
            .field("handlers", &self.engine.handlers.len())
            .field("projections", &self.engine.projections.len())
            .field("config", &self.engine.config)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> EventProcessor<S> {
    /// A processor named `name` (its checkpoint and parked events are kept
    /// under it) over `store`, with no handlers, parking in memory.
    pub fn new(name: impl Into<String>, store: S, checkpoints: Arc<dyn CheckpointStore>) -> Self {
        let config = ProcessorConfig::default();
        let feed = Feed::new(
            store,
            ReadFilter::all(),
            config.page_events,
            config.page_events,
            Position::START,
        );
        let (position, _) = watch::channel(Position::START);
        EventProcessor {
            engine: Arc::new(Engine {
                name: name.into(),
                handlers: Vec::new(),
                by_type: HashMap::new(),
                any: Vec::new(),
                projections: Vec::new(),
                query: None,
                parked: Arc::new(MemoryParkedStore::new()),
                config,
                stats: Arc::new(Stats::default()),
            }),
            checkpoints,
            feed,
            started: false,
            last_saved: None,
            since_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            checkpoints_saved: 0,
            position,
            pool: None,
        }
    }

    fn engine_mut(&mut self) -> &mut Engine {
        Arc::make_mut(&mut self.engine)
    }

    fn refilter(&mut self) {
        let filter = self.engine.filter();
        self.feed.set_filter(filter);
        self.feed.set_query(self.engine.feed_query());
    }

    /// Sets how it reads, batches, parallelizes and retries.
    pub fn with_config(mut self, config: ProcessorConfig) -> Self {
        self.feed.set_sizes(config.page_events, config.page_events);
        self.engine_mut().config = config;
        self
    }

    /// Hands the handlers only the events matching `query`, a dynamic
    /// consistency boundary's [`Query`] (events of system streams never
    /// match): those of user streams whose type and tags match one of its
    /// items, and that a handler is registered for. It combines with the
    /// handlers' event types (both must let an event through).
    ///
    /// The processor catches up with the store's query reads (its tag and
    /// type indexes) and then follows a query-filtered subscription. The
    /// events it skips move its position and checkpoint as the ones no
    /// handler wants do, so after a restart it resumes after them. Attached
    /// projections keep their own filters and queries
    /// ([`Projection::dcb_query`](crate::Projection::dcb_query)); in a group
    /// ([`run_in_group`](Self::run_in_group)) the messages the query skips
    /// are acked unhandled.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use strata::dcb::{Query, QueryItem, Tag};
    /// use strata::processor::{handler_fn, EventProcessor};
    /// use strata::*;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let tag = |t: &str| Tag::new(t).unwrap();
    /// let s = StreamId::new("course-c1").unwrap();
    /// store.append(&s, ExpectedVersion::Any, vec![
    ///     NewEvent::json_bytes("StudentSubscribed", "{}").with_tags(vec![tag("course:c1"), tag("student:s1")]),
    ///     NewEvent::json_bytes("StudentSubscribed", "{}").with_tags(vec![tag("course:c1"), tag("student:s2")]),
    /// ]).await.unwrap();
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let query = Query::new(vec![QueryItem::new(["StudentSubscribed"], [tag("student:s2")])]).unwrap();
    /// let mut processor = EventProcessor::new("s2-mail", store, Arc::new(MemoryCheckpointStore::new()))
    ///     .with_query(query)
    ///     .on_any(handler_fn("mail", move |e: &RecordedEvent| {
    ///         log.lock().unwrap().push(e.version);
    ///         Ok(())
    ///     }));
    /// let report = processor.catch_up().await.unwrap();
    /// assert_eq!(*seen.lock().unwrap(), vec![2]);
    /// assert_eq!(report.to, Position(2)); // the skipped event is behind it too
    /// # });
    /// ```
    pub fn with_query(mut self, query: Query) -> Self {
        self.engine_mut().query = Some(query);
        self.refilter();
        self
    }

    /// Keeps parked events in `store` instead of in memory.
    pub fn with_parked_store(mut self, store: Arc<dyn ParkedStore>) -> Self {
        self.engine_mut().parked = store;
        self
    }

    /// Calls `handler` for every event of type `event_type`. A handler may
    /// be registered for several types (register it once per type, by
    /// `Arc`) and a type may have several handlers (called in
    /// registration order).
    pub fn on(self, event_type: impl Into<String>, handler: impl EventHandler) -> Self {
        self.on_shared(event_type, Arc::new(handler))
    }

    /// Like [`on`](Self::on), for a handler shared by `Arc`.
    pub fn on_shared(
        mut self,
        event_type: impl Into<String>,
        handler: Arc<dyn EventHandler>,
    ) -> Self {
        let engine = self.engine_mut();
        let index = engine.index_of(handler);
        let list = engine.by_type.entry(event_type.into()).or_default();
        if !list.contains(&index) {
            list.push(index);
        }
        self.refilter();
        self
    }

    /// Calls `handler` for every event.
    pub fn on_any(mut self, handler: impl EventHandler) -> Self {
        let engine = self.engine_mut();
        let index = engine.index_of(Arc::new(handler));
        if !engine.any.contains(&index) {
            engine.any.push(index);
        }
        self.refilter();
        self
    }

    /// Folds every event (that passes its filter) into `projection`, in
    /// position order, before the handlers of its page run. The processor
    /// becomes the projection's writer: do not also run it with a
    /// [`ProjectionRunner`](crate::ProjectionRunner).
    pub fn with_projection<P: Projection>(mut self, projection: SharedProjection<P>) -> Self {
        self.engine_mut().projections.push(Arc::new(projection));
        self.refilter();
        self
    }

    /// Runs the processor's handlers as `member` of a consumer group, on a
    /// task, instead of following `$all` with its own checkpoint: the
    /// group's checkpoint, retries and parked list take the place of the
    /// processor's (its [`RetryPolicy`] and parked store are not used), and
    /// handlers get each message at least once; see [`crate::group`].
    /// Handlers receive each read's messages in order, in batches of at most
    /// [`ProcessorConfig::batch_events`]; a member handles its messages on
    /// one task (`workers` is not used: run more members instead). Messages
    /// no handler is registered for are acked.
    ///
    /// Fails with [`ProcessorError::Config`] when projections are attached
    /// (run them with
    /// [`ProjectionRunner::run_in_group`](crate::ProjectionRunner::run_in_group)),
    /// or when the member's config is out of bounds.
    pub fn run_in_group(
        self,
        member: crate::group::GroupMember,
    ) -> Result<crate::group::RunningMember, ProcessorError> {
        if !self.engine.projections.is_empty() {
            return Err(ProcessorError::Config(
                "a processor with projections cannot run in a group: \
                 run each projection with ProjectionRunner::run_in_group"
                    .to_owned(),
            ));
        }
        let e = &self.engine;
        let work = crate::group::handlers::HandlerWork::new(
            e.handlers.clone(),
            e.by_type.clone(),
            e.any.clone(),
            e.config.batch_events,
        )
        .with_query(e.query.clone());
        member
            .spawn(work)
            .map_err(|e| ProcessorError::Config(e.to_string()))
    }

    /// The processor's name.
    pub fn name(&self) -> &str {
        &self.engine.name
    }

    /// Its counters.
    pub fn stats(&self) -> ProcessorStats {
        self.engine.stats.read()
    }

    /// Every position up to this one has been processed.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Processes `events` now, as a page read from the store would be:
    /// projections, then handlers in batches, in parallel partitions if
    /// configured (`process_event_batch`). Does not touch the
    /// checkpoint. `events` must be in position order.
    pub async fn process_event_batch(
        &self,
        events: &[RecordedEvent],
    ) -> Result<(), ProcessorError> {
        let considered = events.last().map_or(Position::START, |e| e.position);
        self.engine.process_page(events.to_vec(), considered).await
    }

    /// Up to `limit` parked events, in position order.
    pub async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, ProcessorError> {
        Ok(self.engine.parked.list(&self.engine.name, limit).await?)
    }

    /// Tries up to `limit` parked events again with their handler (as the
    /// retry policy allows). Those that succeed leave the parked list; the
    /// others stay, with their new error.
    pub async fn replay_parked(&self, limit: usize) -> Result<ReplayReport, ProcessorError> {
        self.engine.replay_parked(limit).await
    }

    async fn start(&mut self) -> Result<(), ProcessorError> {
        if self.started {
            return Ok(());
        }
        let saved = self.checkpoints.load(&self.engine.name).await?;
        self.last_saved = saved;
        let from = saved.unwrap_or(Position::START);
        self.catch_up_projections(from).await?;
        self.feed.restart(from);
        self.position.send_replace(from);
        self.started = true;
        tracing::debug!(processor = %self.engine.name, %from, "processor starts");
        Ok(())
    }

    /// Projections kept in memory start empty while the processor resumes
    /// after its checkpoint: fold what they miss first (nothing is handled).
    async fn catch_up_projections(&mut self, to: Position) -> Result<(), ProcessorError> {
        let page = self
            .engine
            .config
            .page_events
            .min(self.feed.store().limits().max_read_count)
            .max(1);
        for sink in &self.engine.projections {
            if sink.durable() {
                // Its state outlived the last run; it follows the checkpoint.
                continue;
            }
            let mut at = sink.position().await;
            while at < to {
                let events = self
                    .feed
                    .store()
                    .read_all(at.next(), page, sink.filter())
                    .await?;
                let short = events.len() < page;
                let keep = events.iter().take_while(|e| e.position <= to).count();
                let reached = if short || keep < events.len() {
                    to
                } else {
                    events.last().map_or(to, |e| e.position)
                };
                for (i, err) in sink.apply(&events[..keep], reached).await {
                    self.engine
                        .park(sink.name(), &events[i], err.to_string(), 1)
                        .await?;
                }
                at = reached;
            }
        }
        Ok(())
    }

    /// Processes everything up to the store's head, saves a checkpoint and
    /// reports what it did.
    pub async fn catch_up(&mut self) -> Result<CatchUpReport, ProcessorError> {
        self.start().await?;
        let from = self.feed.considered();
        self.feed.restart(from);
        let started = Instant::now();
        let saved_before = self.checkpoints_saved;
        let (mut events, mut pages) = (0u64, 0u64);
        let parallel = self.engine.workers() > 1;
        let mut next = self.feed.next().await?;
        while let Some(batch) = next.take() {
            pages += 1;
            let n = batch.events.len() as u64;
            events += n;
            let considered = batch.considered;
            let caught_up = batch.caught_up;
            if parallel {
                // Queued to the workers; the next page is read meanwhile.
                self.dispatch(batch).await?;
                if !caught_up {
                    next = self.feed.next().await?;
                }
                continue;
            }
            let engine = Arc::clone(&self.engine);
            if caught_up {
                engine.process_page(batch.events, considered).await?;
            } else {
                // Read the next page while this one is being handled.
                let (done, following) = tokio::join!(
                    engine.process_page(batch.events, considered),
                    self.feed.next()
                );
                done?;
                next = following?;
            }
            self.processed(n, considered).await?;
        }
        self.drain(true).await?;
        self.checkpoint().await?;
        Ok(CatchUpReport {
            name: self.engine.name.clone(),
            from,
            to: self.feed.considered(),
            events,
            pages,
            checkpoints: self.checkpoints_saved - saved_before,
            elapsed: started.elapsed(),
        })
    }

    async fn process(&mut self, batch: Batch) -> Result<(), ProcessorError> {
        if self.engine.workers() > 1 {
            return self.dispatch(batch).await;
        }
        let n = batch.events.len() as u64;
        let considered = batch.considered;
        self.engine.process_page(batch.events, considered).await?;
        self.processed(n, considered).await
    }

    /// Folds a page into the projections, then queues its partitions to the
    /// workers (waiting when their queues are full), then records the pages
    /// that are done.
    async fn dispatch(&mut self, batch: Batch) -> Result<(), ProcessorError> {
        let n = batch.events.len() as u64;
        let considered = batch.considered;
        self.engine.project(&batch.events, considered).await?;
        let workers = self.engine.workers();
        let pool = match &mut self.pool {
            Some(pool) => pool,
            None => self.pool.insert(WorkerPool::start(&self.engine, workers)),
        };
        let seq = pool.next_seq;
        pool.next_seq += 1;
        let parts = if self.engine.handlers.is_empty() {
            Vec::new()
        } else {
            self.engine.partition(batch.events, workers)
        };
        let mut remaining = 0;
        pool.in_flight.push_back(InFlight {
            seq,
            remaining: 0,
            considered,
            events: n,
        });
        for (worker, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            remaining += 1;
            if let Some(page) = pool.in_flight.back_mut() {
                page.remaining = remaining;
            }
            let job = Job { seq, events: part };
            if pool.senders[worker].send(job).await.is_err() {
                // The worker ended after a failure it reported: return that.
                while let Ok(done) = pool.done.try_recv() {
                    pool.mark(done)?;
                }
                return Err(ProcessorError::WorkerPanicked {
                    processor: self.engine.name.clone(),
                });
            }
        }
        self.drain(false).await
    }

    /// Records one finished partition and advances over finished pages.
    async fn settle(&mut self, done: Done) -> Result<(), ProcessorError> {
        let Some(pool) = self.pool.as_mut() else {
            return Ok(());
        };
        pool.mark(done)?;
        let completed = pool.completed();
        for page in completed {
            self.processed(page.events, page.considered).await?;
        }
        Ok(())
    }

    /// Closes the workers' queues and waits for them to end.
    async fn stop_pool(&mut self) {
        if let Some(pool) = self.pool.take() {
            let WorkerPool { senders, tasks, .. } = pool;
            drop(senders);
            for t in tasks {
                let _ = t.await;
            }
        }
    }

    /// Records finished partitions and advances over finished pages; with
    /// `wait_all`, until nothing is in flight.
    async fn drain(&mut self, wait_all: bool) -> Result<(), ProcessorError> {
        loop {
            let Some(pool) = self.pool.as_mut() else {
                return Ok(());
            };
            let done = if wait_all && !pool.in_flight.is_empty() {
                match pool.done.recv().await {
                    Some(done) => Some(done),
                    // Every worker is gone with pages unfinished.
                    None => {
                        return Err(ProcessorError::WorkerPanicked {
                            processor: self.engine.name.clone(),
                        })
                    }
                }
            } else {
                pool.done.try_recv().ok()
            };
            let got = done.is_some();
            if let Some(done) = done {
                pool.mark(done)?;
            }
            let completed = pool.completed();
            let idle = pool.in_flight.is_empty();
            for page in completed {
                self.processed(page.events, page.considered).await?;
            }
            if !got && (!wait_all || idle) {
                return Ok(());
            }
        }
    }

    /// Records that everything up to `considered` was processed.
    async fn processed(&mut self, n: u64, considered: Position) -> Result<(), ProcessorError> {
        self.position.send_replace(considered);
        self.since_checkpoint += n;
        if self.since_checkpoint >= self.engine.config.checkpoint_every_events
            || self.last_checkpoint_at.elapsed()
                >= Duration::from_millis(self.engine.config.checkpoint_interval_ms)
        {
            self.checkpoint().await?;
        }
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<(), ProcessorError> {
        let position = *self.position.borrow();
        self.since_checkpoint = 0;
        self.last_checkpoint_at = Instant::now();
        if self.last_saved == Some(position) || position == Position::START {
            return Ok(());
        }
        self.checkpoints.save(&self.engine.name, position).await?;
        self.last_saved = Some(position);
        self.checkpoints_saved += 1;
        Ok(())
    }

    /// Catches up, then processes new events as they commit, in a
    /// background task, until stopped. Must be called inside a Tokio runtime.
    pub fn spawn(self) -> RunningProcessor {
        let (control, rx) = mpsc::channel(PROCESSOR_CONTROL_QUEUE_COMMANDS);
        let engine = Arc::clone(&self.engine);
        let position = self.position.subscribe();
        let task = tokio::spawn(self.run(rx));
        RunningProcessor {
            engine,
            position,
            control,
            task,
        }
    }

    async fn run(
        mut self,
        mut control: mpsc::Receiver<()>,
    ) -> Result<CatchUpReport, ProcessorError> {
        let result = self.run_inner(&mut control).await;
        if let Err(e) = &result {
            tracing::error!(processor = %self.engine.name, error = %e, "processor failed");
        }
        result
    }

    async fn run_inner(
        &mut self,
        control: &mut mpsc::Receiver<()>,
    ) -> Result<CatchUpReport, ProcessorError> {
        self.start().await?;
        let started = Instant::now();
        let from = self.feed.considered();
        let saved_before = self.checkpoints_saved;
        let (mut events, mut pages) = (0u64, 0u64);
        let interval = Duration::from_millis(self.engine.config.checkpoint_interval_ms);
        let mut failures = 0u32;
        loop {
            let dirty = self.since_checkpoint > 0;
            let deadline = tokio::time::Instant::from_std(self.last_checkpoint_at + interval);
            let waiting = self.pool.as_ref().is_some_and(|p| !p.in_flight.is_empty());
            tokio::select! {
                biased;
                _ = control.recv() => break,
                done = next_done(&mut self.pool), if waiting => {
                    if let Some(done) = done {
                        self.settle(done).await?;
                    }
                }
                _ = tokio::time::sleep_until(deadline), if dirty => self.checkpoint().await?,
                batch = self.feed.next() => match batch {
                    Ok(Some(batch)) => {
                        failures = 0;
                        pages += 1;
                        events += batch.events.len() as u64;
                        self.process(batch).await?;
                    }
                    // The store closed: nothing more will come.
                    Ok(None) => break,
                    Err(e) if retryable(&e) && failures < MAX_STORE_RETRIES => {
                        tracing::warn!(processor = %self.engine.name, error = %e, "read failed; retrying");
                        tokio::time::sleep(retry_delay(failures)).await;
                        failures += 1;
                    }
                    Err(e) => return Err(e.into()),
                },
            }
        }
        self.drain(true).await?;
        self.stop_pool().await;
        self.checkpoint().await?;
        Ok(CatchUpReport {
            name: self.engine.name.clone(),
            from,
            to: *self.position.borrow(),
            events,
            pages,
            checkpoints: self.checkpoints_saved - saved_before,
            elapsed: started.elapsed(),
        })
    }
}

impl Engine {
    fn index_of(&mut self, handler: Arc<dyn EventHandler>) -> usize {
        if let Some(i) = self.handlers.iter().position(|h| Arc::ptr_eq(h, &handler)) {
            return i;
        }
        if self.handlers.iter().any(|h| h.name() == handler.name()) {
            // Parked events are filed, and replayed, by handler name.
            tracing::warn!(
                processor = %self.name,
                handler = handler.name(),
                "two different handlers share a name; replays of parked events use the first"
            );
        }
        self.handlers.push(handler);
        self.handlers.len() - 1
    }
}

/// An event processor working in a background task.
pub struct RunningProcessor {
    engine: Arc<Engine>,
    position: watch::Receiver<Position>,
    control: mpsc::Sender<()>,
    task: JoinHandle<Result<CatchUpReport, ProcessorError>>,
}

impl std::fmt::Debug for RunningProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProcessor")
            .field("name", &self.engine.name)
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

impl RunningProcessor {
    /// The processor's name.
    pub fn name(&self) -> &str {
        &self.engine.name
    }

    /// Every position up to this one has been processed.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Waits, at most `max_wait`, until the processor has processed every
    /// event up to `position`, and returns where it is then — the same shape
    /// as [`SharedProjection::wait_for`](crate::SharedProjection::wait_for).
    ///
    /// Fails with [`WaitError::Timeout`] when it did not get there in time,
    /// and with [`WaitError::Stopped`] when its task ended first.
    pub async fn wait_for(
        &self,
        position: Position,
        max_wait: Duration,
    ) -> Result<Position, WaitError> {
        let started = tokio::time::Instant::now();
        let mut rx = self.position.clone();
        let outcome = tokio::time::timeout(max_wait, rx.wait_for(|p| *p >= position))
            .await
            .map(|r| r.map(|at| *at));
        let reached = *rx.borrow();
        match outcome {
            Ok(Ok(at)) => Ok(at),
            Ok(Err(_)) => Err(WaitError::Stopped {
                projection: self.engine.name.clone(),
                wanted: position,
                reached,
                reason: "its task has ended".to_owned(),
            }),
            Err(_) => Err(WaitError::Timeout {
                projection: self.engine.name.clone(),
                wanted: position,
                reached,
                waited_ms: started.elapsed().as_millis() as u64,
            }),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> ProcessorStats {
        self.engine.stats.read()
    }

    /// Up to `limit` parked events, in position order.
    pub async fn parked(&self, limit: usize) -> Result<Vec<ParkedEvent>, ProcessorError> {
        Ok(self.engine.parked.list(&self.engine.name, limit).await?)
    }

    /// Tries up to `limit` parked events again (see [`EventProcessor::replay_parked`]).
    pub async fn replay_parked(&self, limit: usize) -> Result<ReplayReport, ProcessorError> {
        self.engine.replay_parked(limit).await
    }

    /// Whether the background task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops cleanly: the current page is finished and a last checkpoint saved.
    pub async fn stop(self) -> Result<CatchUpReport, ProcessorError> {
        let _ = self.control.send(()).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ProcessorError::Stopped {
                processor: self.engine.name.clone(),
                reason: if e.is_panic() {
                    "its task panicked".to_owned()
                } else {
                    "its task was cancelled".to_owned()
                },
            }),
        }
    }
}
