//! The query model: named projections behind a cache, read with
//! a chosen consistency.
//!
//! Projections are eventually consistent: they trail the store. A query
//! says how far behind it may be:
//!
//! - [`Consistency::Eventual`]: the last state the read model published,
//!   at once: it never waits for the runner, even while the runner folds a
//!   batch or commits (the read model keeps a copy of the state, taken at
//!   most once per new state, which is why queried projections are `Clone`);
//! - [`Consistency::AtLeast`]`(p)`: wait (at most the model's `max_wait`)
//!   until the projection has considered every event up to `p`. Pass the
//!   last position of your own append ([`Committed::positions`](crate::Committed))
//!   and you read your own writes;
//! - [`Consistency::Latest`]: like `AtLeast(head)`, with the store's head
//!   read when the query starts.
//!
//! Answers are cached per query, stamped with the position of the last
//! event the projection's state included when they were computed (and the
//! projection's reset generation). An entry is only served while the
//! projection's state is still exactly that one: as soon as the projection
//! folds another event in, every older entry is stale and is recomputed on
//! its next use. Events the projection's filter skips do not invalidate
//! anything. So a cached answer is never older than the position a query
//! demanded.

use std::any::Any;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use lru::LruCache;
use parking_lot::Mutex;
use strata_core::{CheckpointStore, EventStore, Position};

use crate::consistency::{lag_of, Lag};
use crate::projection::{Projection, ProjectionError};
use crate::runner::{
    CatchUpReport, ProjectionRunner, RunReport, RunnerConfig, RunningProjection, SharedProjection,
    WaitError,
};

/// Default for how long a query waits for its projection to reach the
/// position it demands.
pub const DEFAULT_QUERY_WAIT_MS: u64 = 5_000;
/// Default for how many answers a read model caches.
pub const DEFAULT_QUERY_CACHE_ENTRIES: usize = 10_000;

/// How fresh an answer must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// The last state the read model published; never waits, not even
    /// while the runner folds a batch or commits. The one exception: a
    /// read model made while the runner held the state has nothing
    /// published yet, and its first query waits for that state once.
    Eventual,
    /// At least every event up to this position; waits for it.
    AtLeast(Position),
    /// Every event committed when the query starts; waits for it.
    Latest,
}

/// A projection that answers queries.
///
/// ```
/// use std::collections::HashMap;
/// use strata::query::Queryable;
///
/// #[derive(Default)]
/// struct Counts(HashMap<String, u64>);
///
/// impl Queryable for Counts {
///     type Query = String; // a stream name
///     type Answer = u64;
///     fn query(&self, stream: &String) -> u64 {
///         self.0.get(stream).copied().unwrap_or(0)
///     }
/// }
/// ```
pub trait Queryable: Send + Sync + 'static {
    /// A question; it is the cache key.
    type Query: Hash + Eq + Clone + Send + Sync + 'static;
    /// An answer; cached and cloned out.
    type Answer: Clone + Send + Sync + 'static;

    /// Answers `query` from the current state.
    fn query(&self, query: &Self::Query) -> Self::Answer;
}

impl<P: Queryable> Queryable for crate::projection::Typed<P>
where
    P: crate::projection::TypedProjection,
{
    type Query = P::Query;
    type Answer = P::Answer;

    fn query(&self, query: &Self::Query) -> Self::Answer {
        self.inner().query(query)
    }
}

/// Why a query got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No projection has that name.
    #[error("no projection named `{name}` is registered in this query model")]
    UnknownProjection {
        /// The name asked for.
        name: String,
    },
    /// The projection with that name has another type.
    #[error("projection `{name}` is not a `{expected}`")]
    WrongType {
        /// The name asked for.
        name: String,
        /// The type asked for.
        expected: &'static str,
    },
    /// A projection with that name is registered already.
    #[error("a projection named `{name}` is already registered; names must be unique")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The projection did not reach the demanded position in time, or stopped.
    #[error(transparent)]
    NotReached(#[from] WaitError),
    /// The store failed (reading its head for `Latest`).
    #[error(transparent)]
    Store(#[from] strata_core::Error),
    /// The projection's runner failed (stopping or rebuilding it).
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// Cache hits and misses of a read model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: u64,
    /// Answers computed (absent or stale entries).
    pub misses: u64,
}

type Stamp = (u64, Position);

struct Cache<Q: Hash + Eq, A> {
    entries: Mutex<Option<LruCache<Q, (A, Stamp)>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A copy of a projection's state that [`Consistency::Eventual`] reads
/// without waiting for the runner.
struct Published<P> {
    state: P,
    stamp: Stamp,
}

/// One projection's queries: consistency, waiting, cache. Cheap to clone.
pub struct ReadModel<P: Queryable> {
    shared: SharedProjection<P>,
    cache: Arc<Cache<P::Query, P::Answer>>,
    published: Arc<Mutex<Option<Arc<Published<P>>>>>,
    max_wait: Duration,
    head: Option<Arc<dyn EventStore>>,
}

impl<P: Queryable> Clone for ReadModel<P> {
    fn clone(&self) -> Self {
        ReadModel {
            shared: self.shared.clone(),
            cache: Arc::clone(&self.cache),
            published: Arc::clone(&self.published),
            max_wait: self.max_wait,
            head: self.head.clone(),
        }
    }
}

impl<P: Queryable> std::fmt::Debug for ReadModel<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("projection", &self.shared.inner.name)
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl<P: Projection + Queryable + Clone> ReadModel<P> {
    /// Queries over `shared`, caching up to `cache_entries` answers (0: no
    /// cache), waiting at most [`DEFAULT_QUERY_WAIT_MS`].
    pub fn new(shared: SharedProjection<P>, cache_entries: usize) -> Self {
        // The state as it is now, unless the runner holds it: then the
        // first eventual query waits once for it.
        let published = shared.inner.slot.try_read().ok().map(|slot| {
            Arc::new(Published {
                state: slot.projection.clone(),
                stamp: (slot.generation, slot.state_position),
            })
        });
        ReadModel {
            shared,
            published: Arc::new(Mutex::new(published)),
            cache: Arc::new(Cache {
                entries: Mutex::new(NonZeroUsize::new(cache_entries).map(LruCache::new)),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
            max_wait: Duration::from_millis(DEFAULT_QUERY_WAIT_MS),
            head: None,
        }
    }

    /// Sets the longest a query waits for its position.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Lets [`Consistency::Latest`] read the head of `store`.
    pub fn with_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.head = Some(store);
        self
    }

    /// The projection.
    pub fn projection(&self) -> &SharedProjection<P> {
        &self.shared
    }

    /// Cache hits and misses so far.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            hits: self.cache.hits.load(Ordering::Relaxed),
            misses: self.cache.misses.load(Ordering::Relaxed),
        }
    }

    /// Answers `query` from a state at least as fresh as `consistency` demands.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use strata::account_balance::{AccountBalanceProjection, BalanceQuery};
    /// # use strata::bank::{AccountCommand, BankAccount};
    /// # use strata::query::{Consistency, QueryModel};
    /// # use strata::*;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// let model = QueryModel::new(store.clone(), Arc::new(MemoryCheckpointStore::new()));
    /// let balances = model.register(Typed::new(AccountBalanceProjection::new())).unwrap();
    ///
    /// let repo = Repository::<BankAccount, _>::new(store);
    /// repo.execute("7", AccountCommand::Open { owner: "ada".into() }, CommandMeta::new()).await.unwrap();
    /// let done = repo.execute("7", AccountCommand::Deposit { amount: 5.into() }, CommandMeta::new()).await.unwrap();
    ///
    /// // Read your own write: wait until the projection has the deposit.
    /// let (_, last) = done.positions.unwrap();
    /// let balance = balances
    ///     .query(&BalanceQuery::Balance("7".into()), Consistency::AtLeast(last))
    ///     .await
    ///     .unwrap();
    /// assert_eq!(balance.balance(), Some(5.into()));
    /// model.shutdown().await.unwrap();
    /// # });
    /// ```
    pub async fn query(
        &self,
        query: &P::Query,
        consistency: Consistency,
    ) -> Result<P::Answer, QueryError> {
        let wanted = match consistency {
            Consistency::Eventual => None,
            Consistency::AtLeast(p) => Some(p),
            Consistency::Latest => match &self.head {
                Some(store) => Some(store.head_position().await?),
                None => {
                    return Err(QueryError::Store(strata_core::Error::invalid(format!(
                        "read model `{}` has no store to read the head from; \
                         build it with `with_store` or use `AtLeast`",
                        self.shared.inner.name
                    ))))
                }
            },
        };
        let Some(wanted) = wanted else {
            return Ok(self.query_eventual(query).await);
        };
        let deadline = tokio::time::Instant::now() + self.max_wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.shared.wait_for(wanted, left).await?;
            let slot = self.shared.inner.slot.read().await;
            if slot.position < wanted {
                // A rebuild reset it between the wait and the lock.
                continue;
            }
            let stamp = (slot.generation, slot.state_position);
            return Ok(self.answer(query, &slot.projection, stamp));
        }
    }

    /// Answers from the published state, without waiting for the runner: a
    /// state newer than the published one is copied and published when the
    /// runner is not holding it; while it is (folding a batch, committing),
    /// the published one answers.
    async fn query_eventual(&self, query: &P::Query) -> P::Answer {
        let progress = self.shared.progress();
        let current = (progress.generation, progress.state_position);
        let published = self.published.lock().clone();
        let state = match published {
            Some(p) if p.stamp >= current => p,
            published => match self.shared.inner.slot.try_read() {
                Ok(slot) => self.publish(&slot.projection, (slot.generation, slot.state_position)),
                Err(_) => match published {
                    Some(p) => p,
                    // Nothing published yet: the one time it waits.
                    None => {
                        let slot = self.shared.inner.slot.read().await;
                        self.publish(&slot.projection, (slot.generation, slot.state_position))
                    }
                },
            },
        };
        self.answer(query, &state.state, state.stamp)
    }

    /// Publishes a copy of `state`, unless a newer one is published already.
    fn publish(&self, state: &P, stamp: Stamp) -> Arc<Published<P>> {
        let mut published = self.published.lock();
        if let Some(p) = published.as_ref() {
            if p.stamp >= stamp {
                return Arc::clone(p);
            }
        }
        let fresh = Arc::new(Published {
            state: state.clone(),
            stamp,
        });
        *published = Some(Arc::clone(&fresh));
        fresh
    }

    /// Answers `query` from `projection` at `stamp`, through the cache.
    fn answer(&self, query: &P::Query, projection: &P, stamp: Stamp) -> P::Answer {
        let mut entries = self.cache.entries.lock();
        let Some(cache) = entries.as_mut() else {
            drop(entries);
            self.cache.misses.fetch_add(1, Ordering::Relaxed);
            return projection.query(query);
        };
        if let Some((answer, at)) = cache.get(query) {
            if *at == stamp {
                self.cache.hits.fetch_add(1, Ordering::Relaxed);
                return answer.clone();
            }
        }
        drop(entries);
        self.cache.misses.fetch_add(1, Ordering::Relaxed);
        let answer = projection.query(query);
        if let Some(cache) = self.cache.entries.lock().as_mut() {
            cache.put(query.clone(), (answer.clone(), stamp));
        }
        answer
    }
}

/// A registered read model with its type erased.
trait Registered: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn lag<'a>(&'a self, store: &'a dyn EventStore) -> BoxFuture<'a, Result<Lag, QueryError>>;
    /// Stops the runner; `None` if it was not running.
    fn stop(&self) -> BoxFuture<'_, Option<Result<RunReport, ProjectionError>>>;
}

struct Entry<P: Queryable> {
    model: ReadModel<P>,
    running: Mutex<Option<RunningProjection<P>>>,
}

impl<P: Projection + Queryable + Clone> Registered for Entry<P> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lag<'a>(&'a self, store: &'a dyn EventStore) -> BoxFuture<'a, Result<Lag, QueryError>> {
        Box::pin(async move {
            let progress = self.model.shared.progress();
            Ok(lag_of(store, self.model.shared.name(), &progress).await?)
        })
    }

    fn stop(&self) -> BoxFuture<'_, Option<Result<RunReport, ProjectionError>>> {
        let running = self.running.lock().take();
        Box::pin(async move {
            match running {
                Some(r) => Some(r.stop().await),
                None => None,
            }
        })
    }
}

/// Named projections behind caches, each kept up to date by
/// its own [`ProjectionRunner`].
///
/// ```
/// # use std::sync::Arc;
/// # use strata::account_balance::{AccountBalanceProjection, BalanceQuery};
/// # use strata::query::{Consistency, QueryModel};
/// # use strata::*;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let model = QueryModel::new(MemoryStore::new(), Arc::new(MemoryCheckpointStore::new()));
/// model.register(Typed::new(AccountBalanceProjection::new())).unwrap();
/// let total = model
///     .query::<Typed<AccountBalanceProjection>>("account-balances", &BalanceQuery::TotalBalance, Consistency::Latest)
///     .await
///     .unwrap();
/// assert_eq!(total.total(), Some(0.into()));
/// model.shutdown().await.unwrap();
/// # });
/// ```
pub struct QueryModel {
    store: Arc<dyn EventStore>,
    checkpoints: Arc<dyn CheckpointStore>,
    runner_config: RunnerConfig,
    max_wait: Duration,
    cache_entries: usize,
    models: Mutex<BTreeMap<String, Arc<dyn Registered>>>,
}

impl std::fmt::Debug for QueryModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryModel")
            .field("projections", &self.names())
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

impl QueryModel {
    /// A query model over `store`, keeping checkpoints in `checkpoints`.
    pub fn new<S: EventStore>(store: S, checkpoints: Arc<dyn CheckpointStore>) -> Self {
        QueryModel {
            store: Arc::new(store),
            checkpoints,
            runner_config: RunnerConfig::default(),
            max_wait: Duration::from_millis(DEFAULT_QUERY_WAIT_MS),
            cache_entries: DEFAULT_QUERY_CACHE_ENTRIES,
            models: Mutex::new(BTreeMap::new()),
        }
    }

    /// Runs projections registered from now on with `config`.
    pub fn with_runner_config(mut self, config: RunnerConfig) -> Self {
        self.runner_config = config;
        self
    }

    /// Sets the longest a query waits for its position (default
    /// [`DEFAULT_QUERY_WAIT_MS`]).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets how many answers each read model caches (default
    /// [`DEFAULT_QUERY_CACHE_ENTRIES`]; 0 turns caching off).
    pub fn with_cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The registered projections' names.
    pub fn names(&self) -> Vec<String> {
        self.models.lock().keys().cloned().collect()
    }

    /// Registers `projection` under its name and starts running it in the
    /// background (it catches up, then follows the store). Must be called
    /// inside a Tokio runtime.
    pub fn register<P: Projection + Queryable + Clone>(
        &self,
        projection: P,
    ) -> Result<ReadModel<P>, QueryError> {
        let name = projection.name().to_owned();
        let mut models = self.models.lock();
        if models.contains_key(&name) {
            return Err(QueryError::Duplicate { name });
        }
        let runner = ProjectionRunner::new(
            Arc::clone(&self.store),
            Arc::clone(&self.checkpoints),
            projection,
        )
        .with_config(self.runner_config.clone());
        let model = ReadModel::new(runner.projection().clone(), self.cache_entries)
            .with_max_wait(self.max_wait)
            .with_store(Arc::clone(&self.store));
        let running = runner.spawn();
        models.insert(
            name,
            Arc::new(Entry {
                model: model.clone(),
                running: Mutex::new(Some(running)),
            }),
        );
        Ok(model)
    }

    fn entry<P: Projection + Queryable + Clone>(
        &self,
        name: &str,
    ) -> Result<Arc<dyn Registered>, QueryError> {
        let models = self.models.lock();
        let entry = models
            .get(name)
            .ok_or_else(|| QueryError::UnknownProjection {
                name: name.to_owned(),
            })?;
        if entry.as_any().downcast_ref::<Entry<P>>().is_none() {
            return Err(QueryError::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<P>(),
            });
        }
        Ok(Arc::clone(entry))
    }

    /// The read model registered as `name`, if it is a `P`.
    pub fn read_model<P: Projection + Queryable + Clone>(
        &self,
        name: &str,
    ) -> Result<ReadModel<P>, QueryError> {
        let entry = self.entry::<P>(name)?;
        match entry.as_any().downcast_ref::<Entry<P>>() {
            Some(e) => Ok(e.model.clone()),
            None => Err(QueryError::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<P>(),
            }),
        }
    }

    /// Asks projection `name` (a `P`) `query` (`query`).
    pub async fn query<P: Projection + Queryable + Clone>(
        &self,
        name: &str,
        query: &P::Query,
        consistency: Consistency,
    ) -> Result<P::Answer, QueryError> {
        self.read_model::<P>(name)?.query(query, consistency).await
    }

    /// How far each projection trails the store.
    pub async fn lag(&self) -> Result<Vec<Lag>, QueryError> {
        let entries: Vec<Arc<dyn Registered>> = self.models.lock().values().cloned().collect();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            out.push(e.lag(self.store.as_ref()).await?);
        }
        Ok(out)
    }

    /// Rebuilds projection `name` (a `P`) from the start while it keeps
    /// running; queries that demand a position wait for the rebuild to
    /// pass it.
    pub async fn rebuild<P: Projection + Queryable + Clone>(
        &self,
        name: &str,
    ) -> Result<CatchUpReport, QueryError> {
        let entry = self.entry::<P>(name)?;
        let Some(e) = entry.as_any().downcast_ref::<Entry<P>>() else {
            return Err(QueryError::UnknownProjection {
                name: name.to_owned(),
            });
        };
        // The running projection is taken out while it rebuilds, so the
        // lock is not held across the await.
        let running = e.running.lock().take();
        let Some(running) = running else {
            return Err(QueryError::Projection(ProjectionError::Stopped {
                projection: name.to_owned(),
                reason: "it is stopped or already rebuilding".to_owned(),
            }));
        };
        let result = running.rebuild().await;
        *e.running.lock() = Some(running);
        Ok(result?)
    }

    /// Stops every projection cleanly (each saves a last checkpoint).
    pub async fn shutdown(self) -> Result<Vec<RunReport>, QueryError> {
        let entries: Vec<Arc<dyn Registered>> = std::mem::take(&mut *self.models.lock())
            .into_values()
            .collect();
        let mut reports = Vec::with_capacity(entries.len());
        let mut first_error = None;
        for e in entries {
            match e.stop().await {
                Some(Ok(r)) => reports.push(r),
                Some(Err(err)) => {
                    first_error.get_or_insert(err);
                }
                None => {}
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(reports),
        }
    }
}
