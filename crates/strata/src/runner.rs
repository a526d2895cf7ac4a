//! Running a projection: catch up from its checkpoint, go live, save
//! checkpoints, rebuild on demand, stop cleanly.
//!
//! A [`ProjectionRunner`] owns the reading; the projection itself lives in
//! a [`SharedProjection`], which readers (a [`ReadModel`](crate::ReadModel),
//! a processor) share with it. Catch-up reads `$all` in big pages through
//! the projection's filter (and its DCB query, with the store's query
//! reads, when [`Projection::dcb_query`] names one) and folds a whole page
//! under one lock; once a
//! page comes back short the runner follows the store through a
//! subscription. After every batch it publishes a [`Progress`]: how far it
//! has considered `$all`, and the position of the last event the state
//! includes.
//!
//! Checkpoints are saved every [`RunnerConfig::checkpoint_every_events`]
//! events or [`RunnerConfig::checkpoint_interval_ms`], whichever comes
//! first (at batch boundaries), and on a clean stop; before each one the
//! runner awaits [`Projection::commit`]. A crash loses at most what was
//! folded since the last checkpoint, and the next runner delivers it again
//! (at least once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use strata_core::dcb::Query;
use strata_core::{CheckpointStore, EventStore, Position, ReadFilter, RecordedEvent};
use tokio::sync::{mpsc, oneshot, watch, Notify, RwLock};
use tokio::task::JoinHandle;

use crate::feed::{Batch, Feed};
use crate::projection::{Projection, ProjectionError};

/// Default for [`RunnerConfig::page_events`].
pub const DEFAULT_PAGE_EVENTS: usize = 4096;
/// Default for [`RunnerConfig::live_batch_events`].
pub const DEFAULT_LIVE_BATCH_EVENTS: usize = 512;
/// Default for [`RunnerConfig::checkpoint_every_events`].
pub const DEFAULT_CHECKPOINT_EVERY_EVENTS: u64 = 10_000;
/// Default for [`RunnerConfig::checkpoint_interval_ms`].
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 1_000;
/// Most consecutive failed store reads (I/O, backend, timeout) a running
/// projection or processor retries before it gives up (a projection then
/// reports [`ProjectionStatus::Failed`]).
pub const MAX_STORE_RETRIES: u32 = 5;
/// Wait before the first retry of a failed store read; it doubles each time.
pub const STORE_RETRY_DELAY_MS: u64 = 20;
/// How many control commands (stop, rebuild) may wait for a running projection.
pub const CONTROL_QUEUE_COMMANDS: usize = 8;
/// How often a waiting reader re-asks the runner where it is, when the
/// runner's last report is behind what the reader waits for.
pub const WAIT_REPOKE_MS: u64 = 5;
/// Least time between two progress log lines of a rebuild.
pub const REBUILD_LOG_INTERVAL_MS: u64 = 1_000;
/// How long [`RunningProjection::abort`] lets the task notice the abort at
/// its next await before cancelling it where it stands.
pub const ABORT_GRACE_MS: u64 = 1_000;

/// How a [`ProjectionRunner`] reads and checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunnerConfig {
    /// Events per `read_all` page while catching up (clamped to the store's
    /// `max_read_count`). Bigger pages mean fewer reads and locks, and more
    /// memory: one page is held at a time. Default [`DEFAULT_PAGE_EVENTS`].
    pub page_events: usize,
    /// Most live events folded under one lock. Default [`DEFAULT_LIVE_BATCH_EVENTS`].
    pub live_batch_events: usize,
    /// Save a checkpoint once this many events were folded since the last
    /// one (checked after each batch). Default [`DEFAULT_CHECKPOINT_EVERY_EVENTS`].
    pub checkpoint_every_events: u64,
    /// Save a checkpoint once this many milliseconds passed since the last
    /// one, if there is progress to save. Default [`DEFAULT_CHECKPOINT_INTERVAL_MS`].
    pub checkpoint_interval_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            page_events: DEFAULT_PAGE_EVENTS,
            live_batch_events: DEFAULT_LIVE_BATCH_EVENTS,
            checkpoint_every_events: DEFAULT_CHECKPOINT_EVERY_EVENTS,
            checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
        }
    }
}

/// What a projection is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProjectionStatus {
    /// No runner has started it yet.
    Idle,
    /// Reading the past in pages.
    CatchingUp,
    /// Caught up; following new events as they commit.
    Live,
    /// Replaying from the start after a reset, towards `target` (the
    /// store's head when the rebuild began).
    Rebuilding {
        /// The head position when the rebuild began.
        target: Position,
    },
    /// Its runner stopped cleanly.
    Stopped,
    /// Its runner gave up.
    Failed {
        /// Why.
        reason: String,
    },
}

impl ProjectionStatus {
    /// Whether a runner is (or may still be) moving it forward.
    pub fn is_running(&self) -> bool {
        !matches!(
            self,
            ProjectionStatus::Stopped | ProjectionStatus::Failed { .. }
        )
    }
}

/// How far a projection has got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Every event of `$all` at or below this position has been considered:
    /// folded in, or skipped by the projection's filter.
    pub position: Position,
    /// The position of the last event folded into the state.
    pub state_position: Position,
    /// Incremented by every reset: states of different generations are
    /// different folds.
    pub generation: u64,
    /// What the projection is doing.
    pub status: ProjectionStatus,
    /// Events folded in since the runner started (or the rebuild began).
    pub events_applied: u64,
    /// When the last event the runner read was recorded.
    pub last_event_at: Option<DateTime<Utc>>,
}

impl Progress {
    fn initial() -> Self {
        Progress {
            position: Position::START,
            state_position: Position::START,
            generation: 0,
            status: ProjectionStatus::Idle,
            events_applied: 0,
            last_event_at: None,
        }
    }
}

/// A projection's state with the positions it reflects, behind one lock.
pub(crate) struct Slot<P> {
    pub(crate) projection: P,
    pub(crate) position: Position,
    pub(crate) state_position: Position,
    pub(crate) generation: u64,
}

pub(crate) struct Shared<P> {
    pub(crate) name: String,
    pub(crate) filter: ReadFilter,
    /// [`Projection::dcb_query`], asked once.
    pub(crate) query: Option<Query>,
    pub(crate) durable: bool,
    pub(crate) slot: RwLock<Slot<P>>,
    pub(crate) progress: watch::Sender<Progress>,
    /// Readers ask the runner to report where it is.
    pub(crate) poke: Notify,
}

impl<P> Shared<P> {
    /// Whether the projection folds `event`: its filter and its query (if
    /// any) both let it through.
    pub(crate) fn wants(&self, event: &RecordedEvent) -> bool {
        (self.filter.is_all() || self.filter.matches(event))
            && self.query.as_ref().is_none_or(|q| q.matches(event))
    }
}

/// A projection shared by its runner (the one writer) and its readers.
/// Cloning is cheap and shares the same projection.
pub struct SharedProjection<P> {
    pub(crate) inner: Arc<Shared<P>>,
}

impl<P> Clone for SharedProjection<P> {
    fn clone(&self) -> Self {
        SharedProjection {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<P> std::fmt::Debug for SharedProjection<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProjection")
            .field("name", &self.inner.name)
            .field("progress", &*self.inner.progress.borrow())
            .finish()
    }
}

/// Why a wait for a position ([`SharedProjection::wait_for`],
/// [`RunningProcessor::wait_for`](crate::RunningProcessor::wait_for)) ended
/// without reaching it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// The projection did not get there in time.
    #[error(
        "`{projection}` reached position {reached}, not {wanted}, within {waited_ms} ms: \
         it is lagging or not running; check its lag, or read with eventual consistency"
    )]
    Timeout {
        /// The projection's (or processor's) name.
        projection: String,
        /// The position waited for.
        wanted: Position,
        /// Where it was when the wait gave up.
        reached: Position,
        /// How long the wait lasted.
        waited_ms: u64,
    },
    /// The projection's runner stopped or failed before getting there.
    #[error("`{projection}` stopped at position {reached} before reaching {wanted}: {reason}")]
    Stopped {
        /// The projection's (or processor's) name.
        projection: String,
        /// The position waited for.
        wanted: Position,
        /// Where it stopped.
        reached: Position,
        /// Why it stopped.
        reason: String,
    },
}

impl<P: Projection> SharedProjection<P> {
    /// Shares `projection`, at the initial position.
    pub fn new(projection: P) -> Self {
        let name = projection.name().to_owned();
        let filter = projection.filter();
        let query = projection.dcb_query();
        let durable = projection.is_durable();
        let (progress, _) = watch::channel(Progress::initial());
        SharedProjection {
            inner: Arc::new(Shared {
                name,
                filter,
                query,
                durable,
                slot: RwLock::new(Slot {
                    projection,
                    position: Position::START,
                    state_position: Position::START,
                    generation: 0,
                }),
                progress,
                poke: Notify::new(),
            }),
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its latest progress report.
    pub fn progress(&self) -> Progress {
        self.inner.progress.borrow().clone()
    }

    /// A receiver of its progress reports.
    pub fn watch(&self) -> watch::Receiver<Progress> {
        self.inner.progress.subscribe()
    }

    /// Reads the projection's state (readers share the lock; the runner
    /// takes it once per batch).
    pub async fn read<R>(&self, f: impl FnOnce(&P) -> R) -> R {
        let slot = self.inner.slot.read().await;
        f(&slot.projection)
    }

    /// Waits, at most `max_wait`, until the projection has considered every
    /// event up to `position`, and returns its progress then.
    ///
    /// Needs a Tokio runtime with the time driver.
    pub async fn wait_for(
        &self,
        position: Position,
        max_wait: Duration,
    ) -> Result<Progress, WaitError> {
        let started = tokio::time::Instant::now();
        let deadline = started + max_wait;
        let mut rx = self.inner.progress.subscribe();
        loop {
            let progress = rx.borrow_and_update().clone();
            if progress.position >= position {
                return Ok(progress);
            }
            if let ProjectionStatus::Stopped | ProjectionStatus::Failed { .. } = &progress.status {
                let reason = match &progress.status {
                    ProjectionStatus::Failed { reason } => reason.clone(),
                    _ => "its runner was stopped".to_owned(),
                };
                return Err(WaitError::Stopped {
                    projection: self.inner.name.clone(),
                    wanted: position,
                    reached: progress.position,
                    reason,
                });
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout {
                    projection: self.inner.name.clone(),
                    wanted: position,
                    reached: progress.position,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            // A live runner reports filtered-out positions only when asked;
            // ask again now and then, in case it had not seen them yet.
            self.inner.poke.notify_one();
            let tick = deadline.min(now + Duration::from_millis(WAIT_REPOKE_MS));
            if let Ok(Err(_)) = tokio::time::timeout_at(tick, rx.changed()).await {
                // Every sender is gone: nobody will move it any more.
                return Err(WaitError::Stopped {
                    projection: self.inner.name.clone(),
                    wanted: position,
                    reached: progress.position,
                    reason: "its runner is gone".to_owned(),
                });
            }
        }
    }

    pub(crate) fn publish(&self, f: impl FnOnce(&mut Progress)) {
        self.inner.progress.send_modify(f);
    }

    pub(crate) fn set_status(&self, status: ProjectionStatus) {
        self.publish(|p| p.status = status);
    }
}

/// What a catch-up or a rebuild did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatchUpReport {
    /// The projection's (or processor's) name.
    pub name: String,
    /// Where it started (exclusive).
    pub from: Position,
    /// Where it ended: every position up to here was considered.
    pub to: Position,
    /// Events handed to the projection (or processor).
    pub events: u64,
    /// `read_all` pages read.
    pub pages: u64,
    /// Checkpoints saved.
    pub checkpoints: u64,
    /// How long it took.
    pub elapsed: Duration,
}

impl CatchUpReport {
    /// Events per second (0 when nothing was timed).
    pub fn events_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.events as f64 / secs
        } else {
            0.0
        }
    }
}

/// What a running projection did until it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// The projection's name.
    pub name: String,
    /// Where it stopped.
    pub position: Position,
    /// Events folded in since it started.
    pub events: u64,
    /// Checkpoints saved.
    pub checkpoints: u64,
}

enum Control {
    Stop,
    Rebuild(oneshot::Sender<Result<CatchUpReport, ProjectionError>>),
}

/// Runs one projection over a store, checkpointing through a [`CheckpointStore`].
///
/// - [`catch_up`](Self::catch_up) folds everything up to the store's head
///   and returns (with counts and elapsed time);
/// - [`rebuild`](Self::rebuild) resets the projection and its checkpoint
///   and replays from the start;
/// - [`spawn`](Self::spawn) keeps it up to date in the background until
///   [`RunningProjection::stop`].
///
/// Where it starts: where the shared projection already is, if it has
/// folded anything in this process; else, for a
/// [durable](Projection::is_durable) projection, after its saved
/// checkpoint; else from the beginning.
///
/// Needs a Tokio runtime with the time driver.
///
/// ```
/// use std::sync::Arc;
/// use strata::*;
///
/// #[derive(Default)]
/// struct Count(u64);
/// impl Projection for Count {
///     fn name(&self) -> &str { "count" }
///     fn update(&mut self, _: &RecordedEvent) -> Result<(), ProjectionError> { self.0 += 1; Ok(()) }
///     fn reset(&mut self) { self.0 = 0; }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let s = StreamId::new("t-1").unwrap();
/// store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("E", "{}")]).await.unwrap();
///
/// let mut runner = ProjectionRunner::new(store.clone(), Arc::new(MemoryCheckpointStore::new()), Count::default());
/// let report = runner.catch_up().await.unwrap();
/// assert_eq!(report.events, 1);
///
/// // Keep it up to date in the background; stop it cleanly.
/// let running = runner.spawn();
/// let r = store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("E", "{}")]).await.unwrap();
/// running.projection().wait_for(r.last_position, std::time::Duration::from_secs(5)).await.unwrap();
/// assert_eq!(running.projection().read(|c| c.0).await, 2);
/// running.stop().await.unwrap();
/// # });
/// ```
pub struct ProjectionRunner<P, S> {
    shared: SharedProjection<P>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: RunnerConfig,
    feed: Feed<S>,
    started: bool,
    last_saved: Option<Position>,
    since_checkpoint: u64,
    last_checkpoint_at: Instant,
    checkpoints_saved: u64,
    events_total: u64,
    /// Set by [`RunningProjection::abort`]: end as a crash would.
    crash: Option<watch::Receiver<bool>>,
}

impl<P, S> std::fmt::Debug for ProjectionRunner<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projection", &self.shared.inner.name)
            .field("config", &self.config)
            .field("last_saved", &self.last_saved)
            .finish_non_exhaustive()
    }
}

pub(crate) fn retryable(e: &strata_core::Error) -> bool {
    matches!(
        e,
        strata_core::Error::Io { .. }
            | strata_core::Error::Backend(_)
            | strata_core::Error::Timeout { .. }
    )
}

pub(crate) fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(STORE_RETRY_DELAY_MS.saturating_mul(1 << attempt.min(10)))
}

impl<P: Projection, S: EventStore> ProjectionRunner<P, S> {
    /// A runner of `projection` over `store`.
    pub fn new(store: S, checkpoints: Arc<dyn CheckpointStore>, projection: P) -> Self {
        Self::for_shared(store, checkpoints, SharedProjection::new(projection))
    }

    /// A runner of an already shared projection. A projection has one
    /// writer: run each shared projection by one runner at a time.
    pub fn for_shared(
        store: S,
        checkpoints: Arc<dyn CheckpointStore>,
        shared: SharedProjection<P>,
    ) -> Self {
        let config = RunnerConfig::default();
        let mut feed = Feed::new(
            store,
            shared.inner.filter.clone(),
            config.page_events,
            config.live_batch_events,
            Position::START,
        );
        feed.set_query(shared.inner.query.clone());
        ProjectionRunner {
            shared,
            checkpoints,
            config,
            feed,
            started: false,
            last_saved: None,
            since_checkpoint: 0,
            last_checkpoint_at: Instant::now(),
            checkpoints_saved: 0,
            events_total: 0,
            crash: None,
        }
    }

    /// Sets how it reads and checkpoints.
    pub fn with_config(mut self, config: RunnerConfig) -> Self {
        self.feed
            .set_sizes(config.page_events, config.live_batch_events);
        self.config = config;
        self
    }

    /// The projection, to read it or hand it to a [`ReadModel`](crate::ReadModel).
    pub fn projection(&self) -> &SharedProjection<P> {
        &self.shared
    }

    /// Folds the messages of a consumer group into the projection, as
    /// `member`, on a task, instead of reading `$all` with its own
    /// checkpoint (the runner's checkpoint store is not used: the group's
    /// checkpoint is the one that counts). Keep a
    /// [`projection`](Self::projection) handle to read it; its progress
    /// reports the group's checkpoint as its position.
    ///
    /// - The state lives in this process, so with several members each
    ///   instance's projection folds only its share of the events. To serve
    ///   one read model from several instances, either use the `pinned`
    ///   strategy with a projection keyed by stream — each stream's events
    ///   reach one instance at a time, in order; a stream moves to another
    ///   instance when members join or leave, so keep the per-stream rows
    ///   in a shared database (written in [`Projection::commit`]) rather
    ///   than in memory — or use `single`: one instance folds everything
    ///   and another takes over from the group's checkpoint when it stops,
    ///   which suits a [durable](Projection::is_durable) projection whose
    ///   state outlives the instance.
    /// - A durable projection's [`commit`](Projection::commit) runs before
    ///   each ack; if it fails, the messages are nacked for a retry.
    /// - An event the projection fails on is parked in the group at once (a
    ///   fold is deterministic, so retrying would fail again).
    /// - Messages outside the projection's filter or query are acked unfolded.
    ///
    /// Fails with [`strata_core::Error::InvalidInput`] when the member's
    /// config is out of bounds. See [`crate::group`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use strata::group::{ConsumerGroups, ConsumerId, GroupMember, GroupName, GroupSettings, GroupSource, LocalGroups, Strategy};
    /// use strata::*;
    ///
    /// #[derive(Default)]
    /// struct Count(u64);
    /// impl Projection for Count {
    ///     fn name(&self) -> &str { "count" }
    ///     fn update(&mut self, _: &RecordedEvent) -> Result<(), ProjectionError> { self.0 += 1; Ok(()) }
    ///     fn reset(&mut self) { self.0 = 0; }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let s = StreamId::new("t-1").unwrap();
    /// let r = store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("E", "{}")]).await.unwrap();
    ///
    /// let groups: Arc<dyn ConsumerGroups> = Arc::new(LocalGroups::new(store.clone()));
    /// let group = GroupName::new("count").unwrap();
    /// let mut settings = GroupSettings::new(GroupSource::Stream(s.clone()));
    /// settings.strategy = Strategy::Single; // one active instance, failover
    /// groups.put_group(&group, settings).await.unwrap();
    ///
    /// let runner = ProjectionRunner::new(store.clone(), Arc::new(MemoryCheckpointStore::new()), Count::default());
    /// let count = runner.projection().clone();
    /// let member = GroupMember::new(Arc::clone(&groups), group, ConsumerId::new("instance-1").unwrap());
    /// let running = runner.run_in_group(member).unwrap();
    /// count.wait_for(r.last_position, std::time::Duration::from_secs(5)).await.unwrap();
    /// assert_eq!(count.read(|c| c.0).await, 1);
    /// running.stop().await.unwrap();
    /// # });
    /// ```
    pub fn run_in_group(
        self,
        member: crate::group::GroupMember,
    ) -> strata_core::Result<crate::group::RunningMember> {
        crate::group::projection::spawn(self.shared, member)
    }

    fn name(&self) -> &str {
        &self.shared.inner.name
    }

    /// Whether the runner was aborted: it commits and saves nothing more.
    fn crashed(&self) -> bool {
        self.crash.as_ref().is_some_and(|rx| *rx.borrow())
    }

    fn aborted_error(&self) -> ProjectionError {
        ProjectionError::Stopped {
            projection: self.name().to_owned(),
            reason: ABORTED.to_owned(),
        }
    }

    /// Decides where to start, once.
    async fn start(&mut self) -> Result<(), ProjectionError> {
        if self.started {
            return Ok(());
        }
        let in_memory = self.shared.inner.slot.read().await.position;
        let from = if in_memory > Position::START {
            in_memory
        } else if self.shared.inner.durable {
            let saved = self.checkpoints.load(self.name()).await?;
            self.last_saved = saved;
            saved.unwrap_or(Position::START)
        } else {
            Position::START
        };
        if from > in_memory {
            let mut slot = self.shared.inner.slot.write().await;
            slot.position = from;
            slot.state_position = from;
        }
        tracing::debug!(projection = %self.name(), %from, "projection starts");
        self.feed.restart(from);
        self.shared.publish(|p| {
            p.position = from;
            p.state_position = p.state_position.max(from);
            p.status = ProjectionStatus::CatchingUp;
            p.events_applied = 0;
        });
        self.started = true;
        Ok(())
    }

    /// Folds everything up to the store's head (as of the last page read),
    /// saves a checkpoint, and reports what it did.
    pub async fn catch_up(&mut self) -> Result<CatchUpReport, ProjectionError> {
        self.start().await?;
        // Back to pages: a live feed would wait for new events.
        let from = self.feed.considered();
        self.feed.restart(from);
        let result = self.catch_up_loop(None).await;
        match &result {
            Ok(_) => self.shared.set_status(ProjectionStatus::Idle),
            Err(e) => self.shared.set_status(ProjectionStatus::Failed {
                reason: e.to_string(),
            }),
        }
        result
    }

    /// Resets the projection and its checkpoint, then replays `$all` from
    /// the start to the head. Progress is published all along
    /// ([`ProjectionStatus::Rebuilding`] with the target position, the
    /// position reached and the events folded) and logged about every
    /// [`REBUILD_LOG_INTERVAL_MS`].
    pub async fn rebuild(&mut self) -> Result<CatchUpReport, ProjectionError> {
        let result = self.rebuild_inner().await;
        match &result {
            Ok(_) => self.shared.set_status(ProjectionStatus::Idle),
            Err(e) => self.shared.set_status(ProjectionStatus::Failed {
                reason: e.to_string(),
            }),
        }
        result
    }

    async fn rebuild_inner(&mut self) -> Result<CatchUpReport, ProjectionError> {
        let target = self.feed.store().head_position().await?;
        self.checkpoints.reset(self.name()).await?;
        let generation = {
            let mut slot = self.shared.inner.slot.write().await;
            slot.projection.reset();
            slot.position = Position::START;
            slot.state_position = Position::START;
            slot.generation += 1;
            slot.generation
        };
        tracing::info!(projection = %self.name(), %target, "rebuilding projection");
        self.last_saved = None;
        self.since_checkpoint = 0;
        self.started = true;
        self.feed.restart(Position::START);
        self.shared.publish(|p| {
            p.position = Position::START;
            p.state_position = Position::START;
            p.generation = generation;
            p.status = ProjectionStatus::Rebuilding { target };
            p.events_applied = 0;
        });
        self.catch_up_loop(Some(target)).await
    }

    async fn catch_up_loop(
        &mut self,
        rebuild_target: Option<Position>,
    ) -> Result<CatchUpReport, ProjectionError> {
        let started = Instant::now();
        let from = self.feed.considered();
        let saved_before = self.checkpoints_saved;
        let mut events = 0u64;
        let mut pages = 0u64;
        let mut logged_at = Instant::now();
        let mut failures = 0u32;
        loop {
            if self.crashed() {
                return Err(self.aborted_error());
            }
            let batch = match self.feed.next().await {
                Ok(Some(batch)) => batch,
                Ok(None) => break,
                Err(e) if retryable(&e) && failures < MAX_STORE_RETRIES => {
                    tracing::warn!(projection = %self.name(), error = %e, "read failed; retrying");
                    tokio::time::sleep(retry_delay(failures)).await;
                    failures += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            failures = 0;
            pages += 1;
            events += batch.events.len() as u64;
            let caught_up = batch.caught_up;
            let considered = batch.considered;
            self.apply(batch).await?;
            self.maybe_checkpoint().await?;
            if let Some(target) = rebuild_target {
                if logged_at.elapsed() >= Duration::from_millis(REBUILD_LOG_INTERVAL_MS) {
                    logged_at = Instant::now();
                    tracing::info!(projection = %self.name(), position = %considered, %target, events, "rebuild progress");
                }
            }
            if caught_up {
                break;
            }
        }
        self.checkpoint().await?;
        let report = CatchUpReport {
            name: self.name().to_owned(),
            from,
            to: self.feed.considered(),
            events,
            pages,
            checkpoints: self.checkpoints_saved - saved_before,
            elapsed: started.elapsed(),
        };
        tracing::debug!(projection = %self.name(), ?report, "caught up");
        Ok(report)
    }

    /// Folds a batch in under one lock and publishes the progress.
    async fn apply(&mut self, batch: Batch) -> Result<(), ProjectionError> {
        let last_event_at = batch.last_recorded_at();
        let mut slot = self.shared.inner.slot.write().await;
        let mut applied = 0usize;
        let mut failure = None;
        for e in &batch.events {
            if let Err(err) = slot.projection.update(e) {
                failure = Some(ProjectionError::at(&self.shared.inner.name, e, err));
                break;
            }
            applied += 1;
        }
        if applied > 0 {
            slot.state_position = batch.events[applied - 1].position;
        }
        slot.position = match (&failure, batch.events.get(applied)) {
            // Everything before the failing event was considered.
            (Some(_), Some(failed)) => slot
                .position
                .max(Position(failed.position.0.saturating_sub(1))),
            _ => slot.position.max(batch.considered),
        };
        let (position, state_position) = (slot.position, slot.state_position);
        drop(slot);
        self.since_checkpoint += applied as u64;
        self.events_total += applied as u64;
        self.shared.publish(|p| {
            p.position = position;
            p.state_position = state_position;
            p.events_applied += applied as u64;
            if last_event_at.is_some() {
                p.last_event_at = last_event_at;
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Moves the considered position forward without events (positions the
    /// filter skipped).
    async fn advance_to(&mut self, considered: Position) {
        let position = {
            let mut slot = self.shared.inner.slot.write().await;
            if considered <= slot.position {
                return;
            }
            slot.position = considered;
            slot.position
        };
        self.shared.publish(|p| p.position = position);
    }

    async fn maybe_checkpoint(&mut self) -> Result<(), ProjectionError> {
        if self.since_checkpoint >= self.config.checkpoint_every_events
            || self.last_checkpoint_at.elapsed()
                >= Duration::from_millis(self.config.checkpoint_interval_ms)
        {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Commits the projection and saves its position, if it moved.
    async fn checkpoint(&mut self) -> Result<(), ProjectionError> {
        if self.crashed() {
            // A crash commits and saves nothing.
            return Ok(());
        }
        let position = {
            let mut slot = self.shared.inner.slot.write().await;
            let position = slot.position;
            if self.last_saved == Some(position) || position == Position::START {
                self.since_checkpoint = 0;
                self.last_checkpoint_at = Instant::now();
                return Ok(());
            }
            slot.projection.commit(position).await?;
            position
        };
        self.checkpoints.save(self.name(), position).await?;
        tracing::trace!(projection = %self.name(), %position, "checkpoint saved");
        self.last_saved = Some(position);
        self.since_checkpoint = 0;
        self.last_checkpoint_at = Instant::now();
        self.checkpoints_saved += 1;
        Ok(())
    }

    /// Catches up, then follows the store in a background task until
    /// stopped. Must be called inside a Tokio runtime.
    pub fn spawn(mut self) -> RunningProjection<P> {
        let (control, rx) = mpsc::channel(CONTROL_QUEUE_COMMANDS);
        let (crash, crash_rx) = watch::channel(false);
        self.crash = Some(crash_rx);
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run(rx));
        RunningProjection {
            shared,
            control,
            crash,
            task,
        }
    }

    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
    ) -> Result<RunReport, ProjectionError> {
        let mut guard = AbnormalEnd {
            shared: self.shared.clone(),
            armed: true,
        };
        let result = self.run_inner(&mut control).await;
        guard.armed = false;
        if self.crashed() {
            tracing::debug!(projection = %self.name(), "projection aborted");
            self.shared.set_status(ProjectionStatus::Failed {
                reason: ABORTED.to_owned(),
            });
            return Err(self.aborted_error());
        }
        match &result {
            Ok(report) => {
                tracing::debug!(projection = %self.name(), ?report, "projection stopped");
                self.shared.set_status(ProjectionStatus::Stopped);
            }
            Err(e) => {
                tracing::error!(projection = %self.name(), error = %e, "projection failed");
                self.shared.set_status(ProjectionStatus::Failed {
                    reason: e.to_string(),
                });
            }
        }
        result
    }

    async fn run_inner(
        &mut self,
        control: &mut mpsc::Receiver<Control>,
    ) -> Result<RunReport, ProjectionError> {
        self.start().await?;
        let mut live = self.feed.is_live();
        self.shared.set_status(if live {
            ProjectionStatus::Live
        } else {
            ProjectionStatus::CatchingUp
        });
        let shared = self.shared.clone();
        let mut failures = 0u32;
        let interval = Duration::from_millis(self.config.checkpoint_interval_ms);
        let mut crash = self.crash.clone();
        loop {
            let dirty = self.since_checkpoint > 0;
            let deadline = tokio::time::Instant::from_std(self.last_checkpoint_at + interval);
            let step = tokio::select! {
                biased;
                _ = aborted(&mut crash) => return Err(self.aborted_error()),
                c = control.recv() => Step::Control(c),
                _ = shared.inner.poke.notified() => Step::Poke,
                _ = tokio::time::sleep_until(deadline), if dirty => Step::Checkpoint,
                b = self.feed.next() => Step::Batch(b),
            };
            match step {
                Step::Control(None | Some(Control::Stop)) if self.crashed() => {
                    return Err(self.aborted_error())
                }
                Step::Control(None | Some(Control::Stop)) => break,
                Step::Control(Some(Control::Rebuild(reply))) => {
                    let result = self.rebuild_inner().await;
                    live = self.feed.is_live();
                    match result {
                        Ok(report) => {
                            self.shared.set_status(if live {
                                ProjectionStatus::Live
                            } else {
                                ProjectionStatus::CatchingUp
                            });
                            let _ = reply.send(Ok(report));
                        }
                        Err(e) => {
                            let stopped = ProjectionError::Stopped {
                                projection: self.name().to_owned(),
                                reason: format!("its rebuild failed: {e}"),
                            };
                            let _ = reply.send(Err(e));
                            return Err(stopped);
                        }
                    }
                }
                Step::Poke => {
                    let considered = self.feed.considered();
                    self.advance_to(considered).await;
                }
                Step::Checkpoint => self.checkpoint().await?,
                Step::Batch(Ok(Some(batch))) => {
                    failures = 0;
                    let caught_up = batch.caught_up;
                    self.apply(batch).await?;
                    if caught_up && !live {
                        live = true;
                        self.shared.set_status(ProjectionStatus::Live);
                        tracing::debug!(projection = %self.name(), "projection is live");
                    }
                    self.maybe_checkpoint().await?;
                }
                // The store closed: nothing more will come.
                Step::Batch(Ok(None)) => break,
                Step::Batch(Err(e)) => {
                    if !retryable(&e) || failures >= MAX_STORE_RETRIES {
                        return Err(e.into());
                    }
                    tracing::warn!(projection = %self.name(), error = %e, "read failed; retrying");
                    tokio::time::sleep(retry_delay(failures)).await;
                    failures += 1;
                }
            }
        }
        self.checkpoint().await?;
        Ok(RunReport {
            name: self.name().to_owned(),
            position: self.feed.considered(),
            events: self.events_total,
            checkpoints: self.checkpoints_saved,
        })
    }
}

/// Why an aborted runner stopped.
const ABORTED: &str = "its runner was aborted (as a crash: no last commit or checkpoint)";

/// Resolves once the runner is aborted; never, if it cannot be.
async fn aborted(crash: &mut Option<watch::Receiver<bool>>) {
    match crash {
        Some(rx) => {
            if rx.wait_for(|c| *c).await.is_err() {
                // The handle is gone without aborting: no abort can come.
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

enum Step {
    Control(Option<Control>),
    Poke,
    Checkpoint,
    Batch(Result<Option<Batch>, strata_core::Error>),
}

/// Marks the projection failed if its runner's task ends without finishing
/// (a panic in the projection, or an abort).
struct AbnormalEnd<P> {
    shared: SharedProjection<P>,
    armed: bool,
}

impl<P> Drop for AbnormalEnd<P> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.inner.progress.send_modify(|p| {
                p.status = ProjectionStatus::Failed {
                    reason: "its runner ended abnormally (a panic or an abort)".to_owned(),
                }
            });
        }
    }
}

/// A projection kept up to date by a background task.
pub struct RunningProjection<P> {
    shared: SharedProjection<P>,
    control: mpsc::Sender<Control>,
    crash: watch::Sender<bool>,
    task: JoinHandle<Result<RunReport, ProjectionError>>,
}

impl<P> std::fmt::Debug for RunningProjection<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProjection")
            .field("projection", &self.shared)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> RunningProjection<P> {
    /// The projection.
    pub fn projection(&self) -> &SharedProjection<P> {
        &self.shared
    }

    /// Resets the projection and its checkpoint and replays from the
    /// start; the runner goes on live afterwards. Watch
    /// [`SharedProjection::watch`] for progress.
    pub async fn rebuild(&self) -> Result<CatchUpReport, ProjectionError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || ProjectionError::Stopped {
            projection: self.shared.inner.name.clone(),
            reason: "its runner is not running".to_owned(),
        };
        self.control
            .send(Control::Rebuild(tx))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Whether the background task has ended (stopped, failed or panicked).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops cleanly: the current batch is finished, the projection
    /// committed and a last checkpoint saved.
    pub async fn stop(self) -> Result<RunReport, ProjectionError> {
        // A closed channel means the task has already ended; join tells why.
        let _ = self.control.send(Control::Stop).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ProjectionError::Stopped {
                projection: self.shared.inner.name.clone(),
                reason: if e.is_panic() {
                    "its runner panicked".to_owned()
                } else {
                    "its runner was cancelled".to_owned()
                },
            }),
        }
    }

    /// Stops as a crash would: no last commit and no last checkpoint, so
    /// the next runner resumes from the last checkpoint saved before (and
    /// delivers again what came after it). A checkpoint already being saved
    /// when the abort comes is finished; none is started after.
    ///
    /// When the returned future resolves, the task has ended and dropped
    /// everything it held (the checkpoint store among them), so the same
    /// store can be opened again at once. The task is asked to end at its
    /// next await; one that does not within [`ABORT_GRACE_MS`] (a read that
    /// hangs) is cancelled where it stands.
    pub async fn abort(self) {
        let RunningProjection {
            control,
            crash,
            mut task,
            ..
        } = self;
        crash.send_replace(true);
        let grace = Duration::from_millis(ABORT_GRACE_MS);
        if tokio::time::timeout(grace, &mut task).await.is_err() {
            task.abort();
            let _ = task.await;
        }
        // Kept open until the task ended, so that it never reads a closed
        // control channel as a request to stop cleanly.
        drop(control);
    }
}
