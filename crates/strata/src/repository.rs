//! The repository: load an aggregate (snapshot + tail), let it decide on a
//! command, append its events guarded by the loaded version, retry on conflict.

use std::num::NonZeroUsize;
use std::sync::Arc;
use uuid::Uuid;

use strata_core::{
    ContentType, Direction, Error as StoreError, EventId, EventStore, ExpectedVersion, Metadata,
    NewEvent, Position, RecordedEvent, SnapshotStore, StreamId, StreamState, Version,
};

use crate::aggregate::Aggregate;
use crate::cache::{AggregateCache, Slot};
use crate::command::{unix_millis, uuid_v7_at, CommandMeta, Committed};
use crate::error::AggregateError;
use crate::event::{self, DomainEvent, DEFAULT_SCHEMA_VERSION, SCHEMA_METADATA_KEY};
use crate::retry::RetryPolicy;
use crate::snapshot::{SnapshotPolicy, Snapshotter};
use crate::stats::{add, bump, Counters, RepositoryStats};
use crate::time_travel::AsOf;
use crate::upcast::Upcasters;

/// Most events one read asks the store for while loading (further limited
/// by the store's own `max_read_count`).
pub const LOAD_PAGE_EVENTS: usize = 1024;

/// Result alias for repository operations on aggregate `A`.
pub type AggregateResult<T, A> = Result<T, AggregateError<<A as Aggregate>::Error>>;

/// An aggregate's state, loaded from its stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded<A> {
    /// The aggregate's stream.
    pub stream: StreamId,
    /// Its state.
    pub state: A,
    /// The version of the last event the state includes (0: none).
    pub version: Version,
}

/// Loads aggregates of type `A` from store `S` and executes commands on them.
///
/// `execute` is load (snapshot + tail) → [`Aggregate::handle`] → append with
/// the loaded version as the expected version. When another writer got there
/// first, it catches up and tries again, as the [`RetryPolicy`] allows. The
/// events it writes carry the caller's correlation id and the command id as
/// their causation id ([`CommandMeta`]).
///
/// Share one repository between tasks with an `Arc`; every method takes `&self`.
///
/// ```
/// use std::sync::Arc;
/// use rust_decimal::Decimal;
/// use strata::bank::{AccountCommand, AccountError, BankAccount};
/// use strata::{AggregateError, CommandMeta, MemorySnapshotStore, MemoryStore, Repository, SnapshotPolicy};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let repo = Repository::<BankAccount, _>::new(MemoryStore::new())
///     .with_cache(10_000)
///     .with_snapshots(Arc::new(MemorySnapshotStore::new()), SnapshotPolicy::every(100));
///
/// repo.execute("42", AccountCommand::Open { owner: "ada".into() }, CommandMeta::new()).await?;
/// let done = repo
///     .execute("42", AccountCommand::Deposit { amount: Decimal::new(1000, 2) }, CommandMeta::new())
///     .await?;
/// assert_eq!(done.stream.as_str(), "account-42");
/// assert_eq!(done.version, 2);
///
/// let refused = repo
///     .execute("42", AccountCommand::Withdraw { amount: Decimal::new(2000, 2) }, CommandMeta::new())
///     .await;
/// assert!(matches!(
///     refused,
///     Err(AggregateError::Rejected(AccountError::InsufficientFunds { .. }))
/// ));
///
/// let account = repo.load("42").await?;
/// assert_eq!(account.state.balance(), Decimal::new(1000, 2));
/// # Ok::<(), AggregateError<AccountError>>(())
/// # }).unwrap();
/// ```
pub struct Repository<A: Aggregate, S: EventStore> {
    store: S,
    snapshots: Option<Snapshotter>,
    retry: RetryPolicy,
    cache: Option<AggregateCache<A>>,
    upcasters: Upcasters,
    counters: Arc<Counters>,
    page_events: usize,
}

impl<A: Aggregate, S: EventStore> std::fmt::Debug for Repository<A, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("aggregate", &A::TYPE)
            .field("snapshots", &self.snapshots.is_some())
            .field("retry", &self.retry)
            .field("cache", &self.cache.as_ref().map(|c| c.len()))
            .field("upcasters", &self.upcasters)
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, S: EventStore> Repository<A, S> {
    /// A repository over `store`: no snapshots, no cache, no upcasters, the
    /// default retry policy.
    pub fn new(store: S) -> Self {
        let page_events = LOAD_PAGE_EVENTS.min(store.limits().max_read_count).max(1);
        Repository {
            store,
            snapshots: None,
            retry: RetryPolicy::default(),
            cache: None,
            upcasters: Upcasters::new(),
            counters: Arc::new(Counters::default()),
            page_events,
        }
    }

    /// Takes snapshots into `store` as `policy` says, and starts loads from them.
    pub fn with_snapshots(mut self, store: Arc<dyn SnapshotStore>, policy: SnapshotPolicy) -> Self {
        self.snapshots = Some(Snapshotter::new(store, policy));
        self
    }

    /// Sets how conflicts are retried.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Keeps up to about `capacity` recently used aggregates loaded in memory
    /// (0 turns the cache off).
    pub fn with_cache(mut self, capacity: usize) -> Self {
        self.cache = NonZeroUsize::new(capacity).map(AggregateCache::new);
        self
    }

    /// Upcasts old events with `upcasters` when loading.
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// The event store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The snapshot store, if snapshots are on.
    pub fn snapshot_store(&self) -> Option<&Arc<dyn SnapshotStore>> {
        self.snapshots.as_ref().map(Snapshotter::store)
    }

    /// The repository's counters.
    pub fn stats(&self) -> RepositoryStats {
        self.counters.read()
    }

    /// The stream of aggregate `id`: `{A::TYPE}-{id}`.
    pub fn stream_id(id: &str) -> AggregateResult<StreamId, A> {
        if A::TYPE.is_empty() || A::TYPE.contains('-') || A::TYPE.starts_with('$') {
            return Err(AggregateError::Store(StoreError::invalid(format!(
                "aggregate type `{}` is not a valid stream category: it must be non-empty, \
                 contain no `-` and not start with `$`",
                A::TYPE
            ))));
        }
        Ok(StreamId::from_parts(A::TYPE, id)?)
    }

    /// Drops aggregate `id` from the cache (the next command loads it again).
    pub fn evict(&self, id: &str) {
        if let Some(cache) = &self.cache {
            cache.remove(id);
        }
    }

    /// Soft-deletes aggregate `id`'s stream if `expected` holds, deletes its
    /// snapshots and drops it from this repository's cache. A later command
    /// starts from the initial state again (the stream's versions continue).
    ///
    /// Deleting the snapshots matters: a snapshot of the deleted events
    /// would otherwise be picked up when the stream is re-created. Other
    /// repositories' caches are not reached; evict there too, or let them
    /// run into a conflict.
    pub async fn delete(&self, id: &str, expected: ExpectedVersion) -> AggregateResult<(), A> {
        let stream = Self::stream_id(id)?;
        self.store.delete_stream(&stream, expected).await?;
        self.evict(id);
        if let Some(snapshots) = &self.snapshots {
            snapshots.flush().await;
            snapshots.store().delete(&stream).await?;
        }
        Ok(())
    }

    /// Erases aggregate `id` if `expected` holds: its stream is erased in the
    /// store ([`EventStore::erase_stream`]: tombstoned for ever, its events'
    /// data removed physically), its snapshots are erased from the snapshot
    /// store ([`SnapshotStore::erase`]: no byte of them left), and its state
    /// is dropped from this repository's cache. Commands on it fail with
    /// [`StoreError::StreamDeleted`] from then on.
    ///
    /// A command on the aggregate that already appended before the erasure
    /// cannot leave a snapshot behind: the erasure waits for the snapshot
    /// saves in flight, and a save decided after the erasure began is
    /// skipped. Other repositories' caches and snapshot stores are not
    /// reached, nor read models built from the stream (ADR 0018).
    ///
    /// If the snapshot store fails after the stream was erased, the error
    /// is returned; erase again with [`ExpectedVersion::Any`] (the stream is
    /// tombstoned now, so any other guard fails with `StreamDeleted`).
    pub async fn erase(&self, id: &str, expected: ExpectedVersion) -> AggregateResult<(), A> {
        let stream = Self::stream_id(id)?;
        // Commands on the cached aggregate take turns on its slot: holding
        // it, none of them is between its append and its snapshot.
        let slot = self.cache.as_ref().and_then(|c| c.get(id));
        let mut turn = match &slot {
            Some(slot) => Some(slot.lock().await),
            None => None,
        };
        self.store.erase_stream(&stream, expected).await?;
        if let Some(slot) = turn.as_deref_mut() {
            // A command still holding the slot finds nothing of it.
            *slot = Slot::new(stream.clone());
        }
        self.evict(id);
        drop(turn);
        if let Some(snapshots) = &self.snapshots {
            snapshots.erase(&stream).await?;
        }
        Ok(())
    }

    /// Waits until every snapshot save started so far has finished (snapshots
    /// are saved in the background so that they never delay a command).
    pub async fn flush_snapshots(&self) {
        if let Some(s) = &self.snapshots {
            s.flush().await;
        }
    }

    /// Loads aggregate `id` as it is now, from the store: the newest usable
    /// snapshot, then the events after it. A stream that does not exist
    /// gives the initial state at version 0.
    pub async fn load(&self, id: &str) -> AggregateResult<Loaded<A>, A> {
        self.load_to(Self::stream_id(id)?, Version::MAX).await
    }

    /// Loads aggregate `id` as it was at a past version, position or time
    /// (`rebuild(E, t)`), starting from a snapshot at or before
    /// that point when there is one.
    ///
    /// ```
    /// use strata::bank::{AccountCommand, BankAccount};
    /// use strata::{AsOf, CommandMeta, MemoryStore, Repository};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let repo = Repository::<BankAccount, _>::new(MemoryStore::new());
    /// repo.execute("7", AccountCommand::Open { owner: "bo".into() }, CommandMeta::new()).await.unwrap();
    /// let deposit = AccountCommand::Deposit { amount: 5.into() };
    /// let first = repo.execute("7", deposit.clone(), CommandMeta::new()).await.unwrap();
    /// repo.execute("7", deposit, CommandMeta::new()).await.unwrap();
    ///
    /// let (_, position) = first.positions.unwrap();
    /// let then = repo.load_as_of("7", AsOf::Position(position)).await.unwrap();
    /// assert_eq!(then.version, 2);
    /// assert_eq!(then.state.balance(), 5.into());
    /// let start = repo.load_as_of("7", AsOf::Version(1)).await.unwrap();
    /// assert_eq!(start.state.balance(), 0.into());
    /// # });
    /// ```
    pub async fn load_as_of(&self, id: &str, as_of: AsOf) -> AggregateResult<Loaded<A>, A> {
        let stream = Self::stream_id(id)?;
        let target = match as_of {
            AsOf::Version(v) => v,
            AsOf::Position(p) => self.version_at(&stream, |e| e.position <= p).await?,
            AsOf::Time(t) => self.version_at(&stream, |e| e.recorded_at <= t).await?,
        };
        self.load_to(stream, target).await
    }

    /// Executes `command` on aggregate `id` and records the events it decides.
    ///
    /// - The aggregate is loaded (from the cache if it is there, else from
    ///   the newest usable snapshot plus the events after it).
    /// - [`Aggregate::handle`] decides. A refusal is returned as
    ///   [`AggregateError::Rejected`]; no events means nothing is written.
    /// - The events are appended with the loaded version as the expected
    ///   version. If another writer appended first, the aggregate is caught
    ///   up and the command handled again, up to
    ///   [`RetryPolicy::max_attempts`] times in all; then
    ///   [`AggregateError::Conflict`] reports both versions.
    /// - A snapshot is saved in the background if a snapshot point was reached.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        meta: CommandMeta,
    ) -> AggregateResult<Committed<A::Event>, A> {
        bump(&self.counters.local().commands);
        match &self.cache {
            Some(cache) => {
                let slot = match cache.get(id) {
                    Some(slot) => slot,
                    None => cache.get_or_insert(id, Self::stream_id(id)?),
                };
                let mut slot = slot.lock().await;
                if slot.loaded {
                    bump(&self.counters.local().cache_hits);
                } else {
                    bump(&self.counters.local().cache_misses);
                }
                self.run(&mut slot, &command, meta).await
            }
            None => {
                let mut slot = Slot::new(Self::stream_id(id)?);
                self.run(&mut slot, &command, meta).await
            }
        }
    }

    /// The decide-append-retry loop on one slot.
    async fn run(
        &self,
        slot: &mut Slot<A>,
        command: &A::Command,
        meta: CommandMeta,
    ) -> AggregateResult<Committed<A::Event>, A> {
        let stamp = CommandStamp::new(meta);
        let erasures_seen = self.snapshots.as_ref().map_or(0, Snapshotter::erasures);
        let max_attempts = self.retry.attempts();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if !slot.loaded {
                self.reload(slot, Version::MAX).await?;
            } else if slot.stale {
                self.catch_up(slot, Version::MAX).await?;
            }
            let events = slot
                .state
                .handle(command)
                .map_err(AggregateError::Rejected)?;
            if events.is_empty() {
                return Ok(stamp.committed(slot, events, None, attempt));
            }
            let new_events = encode_events(&slot.stream, &events, &stamp.base, stamp.millis)?;
            let expected = ExpectedVersion::Exact(slot.version);
            match self.store.append(&slot.stream, expected, new_events).await {
                Ok(appended) => {
                    let next = appended.next_expected_version;
                    self.fold_appended(slot, &events, next, erasures_seen);
                    let positions = Some((appended.first_position, appended.last_position));
                    return Ok(stamp.committed(slot, events, positions, attempt));
                }
                Err(StoreError::WrongExpectedVersion {
                    stream,
                    expected,
                    actual,
                }) => {
                    bump(&self.counters.local().conflicts);
                    if attempt >= max_attempts {
                        slot.stale = true;
                        bump(&self.counters.local().conflicts_exhausted);
                        tracing::debug!(%stream, %expected, %actual, attempt, "conflict: no attempts left");
                        return Err(AggregateError::Conflict {
                            stream,
                            expected,
                            actual,
                            attempts: attempt,
                        });
                    }
                    tracing::debug!(%stream, %expected, %actual, attempt, "conflict: catching up and retrying");
                    let delay = self.retry.delay_before_retry(attempt);
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    // Catch up from the version we had rather than reloading
                    // from scratch: only the other writers' events are read.
                    self.catch_up(slot, Version::MAX).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Folds the events just appended into the slot's state, moves it to
    /// `next_version`, and offers the new state to the snapshot policy
    /// (`erasures_seen`: what [`Snapshotter::erasures`] said before the append).
    fn fold_appended(
        &self,
        slot: &mut Slot<A>,
        events: &[A::Event],
        next_version: Version,
        erasures_seen: u64,
    ) {
        let before = slot.version;
        slot.loaded = false;
        for e in events {
            slot.state.apply(e);
        }
        slot.version = next_version;
        slot.loaded = true;
        if let Some(snapshots) = &self.snapshots {
            snapshots.maybe_save(
                &slot.stream,
                (before, slot.version),
                &slot.state,
                erasures_seen,
                &self.counters,
            );
        }
    }

    /// Loads `stream` up to version `target` into a fresh state.
    async fn load_to(&self, stream: StreamId, target: Version) -> AggregateResult<Loaded<A>, A> {
        let mut slot = Slot::new(stream);
        self.reload(&mut slot, target).await?;
        Ok(Loaded {
            stream: slot.stream,
            state: slot.state,
            version: slot.version,
        })
    }

    /// Rebuilds `slot` from scratch up to `target`: snapshot, then events.
    async fn reload(&self, slot: &mut Slot<A>, target: Version) -> AggregateResult<(), A> {
        slot.loaded = false;
        slot.state = A::default();
        slot.version = 0;
        if let Some(snapshots) = &self.snapshots {
            if let Some((state, version)) = snapshots
                .load::<A>(&slot.stream, target, &self.counters)
                .await
            {
                slot.state = state;
                slot.version = version;
            }
        }
        self.catch_up(slot, target).await
    }

    /// Applies the stream's events after `slot.version`, up to `target`.
    async fn catch_up(&self, slot: &mut Slot<A>, target: Version) -> AggregateResult<(), A> {
        slot.loaded = false;
        while slot.version < target {
            let want = (target - slot.version).min(self.page_events as u64) as usize;
            let page = match self
                .store
                .read_stream(&slot.stream, slot.version + 1, want, Direction::Forward)
                .await
            {
                Ok(page) => page,
                Err(StoreError::StreamNotFound { .. }) => {
                    // No live events (never written, or soft-deleted): the
                    // aggregate is in its initial state.
                    slot.state = A::default();
                    slot.version = 0;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            let read = page.len();
            let mut past_target = false;
            for recorded in &page {
                if recorded.version > target {
                    past_target = true;
                    break;
                }
                if recorded.version <= slot.version {
                    return Err(StoreError::Corrupt {
                        location: format!("stream `{}`", slot.stream),
                        reason: format!(
                            "a forward read from version {} returned version {}",
                            slot.version + 1,
                            recorded.version
                        ),
                    }
                    .into());
                }
                let event: A::Event = self.upcasters.decode(recorded)?;
                slot.state.apply(&event);
                slot.version = recorded.version;
            }
            add(&self.counters.local().events_loaded, read as u64);
            if past_target || read < want {
                break;
            }
        }
        slot.loaded = true;
        slot.stale = false;
        Ok(())
    }

    /// The version of the last readable event of `stream` that satisfies
    /// `at_or_before` (0 if none), by binary search: `at_or_before` must be
    /// true for a prefix of the stream and false after it.
    async fn version_at(
        &self,
        stream: &StreamId,
        at_or_before: impl Fn(&RecordedEvent) -> bool,
    ) -> AggregateResult<Version, A> {
        let info = match self.store.stream_info(stream).await? {
            Some(info) if info.state == StreamState::Live => info,
            Some(info) if info.state == StreamState::Tombstoned => {
                return Err(StoreError::StreamDeleted {
                    stream: stream.clone(),
                }
                .into())
            }
            _ => return Ok(0),
        };
        let first = info.first_readable_version.max(1);
        if first > info.version {
            return Ok(0);
        }
        // Invariant: every readable version <= lo satisfies the predicate;
        // every version > hi does not.
        let (mut lo, mut hi) = (first - 1, info.version);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let probe = self
                .store
                .read_stream(stream, mid, 1, Direction::Forward)
                .await?;
            let Some(event) = probe.first() else {
                // Deleted meanwhile: nothing from here on is readable.
                hi = mid - 1;
                continue;
            };
            if at_or_before(event) {
                lo = event.version.min(hi).max(mid);
            } else {
                hi = mid - 1;
            }
        }
        Ok(if lo < first { 0 } else { lo })
    }
}

/// What every event of one command carries: the command's id, the time it
/// was stamped, and the metadata (correlation and causation ids, user,
/// source, extra keys).
struct CommandStamp {
    command_id: Uuid,
    millis: u64,
    base: Metadata,
}

impl CommandStamp {
    /// Stamps a command: generates its id when `meta` has none, and makes
    /// it the events' causation id (and the correlation id, when `meta`
    /// has none).
    fn new(meta: CommandMeta) -> Self {
        let millis = unix_millis();
        let command_id = meta.command_id.unwrap_or_else(|| uuid_v7_at(millis));
        let causation_id = command_id
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned();
        let correlation_id = meta.correlation_id.unwrap_or_else(|| causation_id.clone());
        let mut extra = meta.extra;
        // Reserved: only the event's own schema version may appear there.
        extra.remove(SCHEMA_METADATA_KEY);
        let base = Metadata {
            correlation_id: Some(correlation_id),
            causation_id: Some(causation_id),
            user_id: meta.user_id,
            source: meta.source,
            extra,
        };
        CommandStamp {
            command_id,
            millis,
            base,
        }
    }

    /// The outcome of the command on `slot`, after `attempts` attempts.
    fn committed<A: Aggregate>(
        &self,
        slot: &Slot<A>,
        events: Vec<A::Event>,
        positions: Option<(Position, Position)>,
        attempts: u32,
    ) -> Committed<A::Event> {
        Committed {
            stream: slot.stream.clone(),
            events,
            version: slot.version,
            positions,
            command_id: self.command_id,
            correlation_id: self.base.correlation_id.clone().unwrap_or_default(),
            attempts,
        }
    }
}

/// Turns domain events into what the store appends, with the command's
/// metadata and each event type's schema version.
fn encode_events<E: DomainEvent, X>(
    stream: &StreamId,
    events: &[E],
    base: &Metadata,
    millis: u64,
) -> Result<Vec<NewEvent>, AggregateError<X>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let encoded = event::encode(e).map_err(|source| AggregateError::Serialization {
            context: format!("a `{}` event for `{stream}`", e.event_type()),
            source,
        })?;
        let mut metadata = base.clone();
        // Version 1 is implied by absence; leaving it out keeps every stored
        // event of an unversioned type smaller (ADR 0003).
        if encoded.schema_version != DEFAULT_SCHEMA_VERSION {
            metadata.extra.insert(
                SCHEMA_METADATA_KEY.to_owned(),
                encoded.schema_version.to_string(),
            );
        }
        out.push(NewEvent {
            // Ours rather than the store's: the same kind of UUID v7, but
            // without a system call for randomness (nor a clock read) per event.
            id: Some(EventId::from(uuid_v7_at(millis))),
            event_type: encoded.event_type.to_owned(),
            data: encoded.data.into(),
            content_type: ContentType::Json,
            metadata,
            tags: Vec::new(),
            json_checked: strata_core::JsonChecked::NO,
        });
    }
    Ok(out)
}
