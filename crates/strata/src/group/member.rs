//! The member loop: read, hand over, settle, until stopped.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata_core::group::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, NackAction, MAX_READ_MESSAGES,
    MAX_REASON_BYTES,
};
use strata_core::{async_trait, Error, Result};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::handlers::HandlerWork;
use crate::processor::{EventHandler, DEFAULT_BATCH_EVENTS};
use crate::runner::{retry_delay, retryable, MAX_STORE_RETRIES};

/// Default for [`MemberConfig::read_max`].
pub const DEFAULT_MEMBER_READ_MAX: usize = 100;
/// Default for [`MemberConfig::read_wait_ms`].
pub const DEFAULT_MEMBER_READ_WAIT_MS: u64 = 200;
/// The longest [`MemberConfig::read_wait_ms`]: the group's own limit.
pub const MAX_MEMBER_READ_WAIT_MS: u64 = strata_core::group::MAX_READ_WAIT.as_secs() * 1_000;

/// How a member reads from its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberConfig {
    /// Most messages one `read` asks for (the group also caps it at the
    /// consumer's free `max_in_flight` room); 1 to
    /// [`MAX_READ_MESSAGES`]. Default [`DEFAULT_MEMBER_READ_MAX`].
    pub read_max: usize,
    /// How long one `read` waits for a first message, in milliseconds; a
    /// stop asked for while the member waits takes effect at once. 1 to
    /// [`MAX_MEMBER_READ_WAIT_MS`]. Default [`DEFAULT_MEMBER_READ_WAIT_MS`].
    pub read_wait_ms: u64,
}

impl Default for MemberConfig {
    fn default() -> Self {
        MemberConfig {
            read_max: DEFAULT_MEMBER_READ_MAX,
            read_wait_ms: DEFAULT_MEMBER_READ_WAIT_MS,
        }
    }
}

impl MemberConfig {
    /// Checks both settings against their limits.
    pub fn validate(&self) -> Result<()> {
        if self.read_max == 0 || self.read_max > MAX_READ_MESSAGES {
            return Err(Error::InvalidInput {
                reason: format!(
                    "read_max must be 1 to {MAX_READ_MESSAGES}, got {}",
                    self.read_max
                ),
            });
        }
        if self.read_wait_ms == 0 || self.read_wait_ms > MAX_MEMBER_READ_WAIT_MS {
            return Err(Error::InvalidInput {
                reason: format!(
                    "read_wait_ms must be 1 to {MAX_MEMBER_READ_WAIT_MS}, got {}",
                    self.read_wait_ms
                ),
            });
        }
        Ok(())
    }
}

/// One consumer of one group: which group, under which consumer name, and
/// how it reads. Start it with
/// [`EventProcessor::run_in_group`](crate::EventProcessor::run_in_group),
/// [`ProjectionRunner::run_in_group`](crate::ProjectionRunner::run_in_group)
/// or [`spawn_handler`](Self::spawn_handler).
///
/// Four members of one group on tasks of one program, each running the
/// same processor's handlers:
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use strata::group::{ConsumerGroups, ConsumerId, GroupMember, GroupName, GroupSettings, GroupSource, LocalGroups};
/// use strata::processor::handler_fn;
/// use strata::*;
///
/// # tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// for i in 0..40 {
///     let s = StreamId::new(format!("order-{}", i % 4)).unwrap();
///     store.append(&s, ExpectedVersion::Any, vec![NewEvent::json_bytes("OrderPlaced", "{}")]).await.unwrap();
/// }
/// let groups: Arc<dyn ConsumerGroups> = Arc::new(LocalGroups::new(store.clone()));
/// let group = GroupName::new("mailer").unwrap();
/// let mut settings = GroupSettings::new(GroupSource::All(ReadFilter::all().category("order")));
/// settings.strategy = strata::group::Strategy::Pinned; // per-stream order
/// groups.put_group(&group, settings).await.unwrap();
///
/// let sent = Arc::new(AtomicU64::new(0));
/// let mut members = Vec::new();
/// for i in 0..4 {
///     let sent = Arc::clone(&sent);
///     let processor = EventProcessor::new("mailer", store.clone(), Arc::new(MemoryCheckpointStore::new()))
///         .on("OrderPlaced", handler_fn("confirm", move |_e: &RecordedEvent| {
///             sent.fetch_add(1, Ordering::SeqCst);
///             Ok(())
///         }));
///     let member = GroupMember::new(Arc::clone(&groups), group.clone(), ConsumerId::new(format!("mailer-{i}")).unwrap());
///     members.push(processor.run_in_group(member).unwrap());
/// }
/// while sent.load(Ordering::SeqCst) < 40 {
///     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
/// }
/// let mut acked = 0;
/// for m in members {
///     acked += m.stop().await.unwrap().acked; // each leaves the group
/// }
/// assert_eq!(acked, 40);
/// # });
/// ```
#[derive(Clone)]
pub struct GroupMember {
    pub(crate) groups: Arc<dyn ConsumerGroups>,
    pub(crate) group: GroupName,
    pub(crate) consumer: ConsumerId,
    pub(crate) config: MemberConfig,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GroupMember {
    /// `consumer` of `group` in `groups`, reading with the default
    /// [`MemberConfig`]. Consumer names must differ between the members of
    /// a group: leases are held by name.
    pub fn new(groups: Arc<dyn ConsumerGroups>, group: GroupName, consumer: ConsumerId) -> Self {
        GroupMember {
            groups,
            group,
            consumer,
            config: MemberConfig::default(),
        }
    }

    /// Sets how it reads.
    pub fn with_config(mut self, config: MemberConfig) -> Self {
        self.config = config;
        self
    }

    /// The group.
    pub fn group(&self) -> &GroupName {
        &self.group
    }

    /// The consumer's name.
    pub fn consumer(&self) -> &ConsumerId {
        &self.consumer
    }

    /// Runs one handler for every message, on a task, without a processor.
    /// Fails with [`Error::InvalidInput`] when the config is out of bounds.
    pub fn spawn_handler(self, handler: impl EventHandler) -> Result<RunningMember> {
        let handler: Arc<dyn EventHandler> = Arc::new(handler);
        let work = HandlerWork::new(
            vec![handler],
            Default::default(),
            vec![0],
            DEFAULT_BATCH_EVENTS,
        );
        self.spawn(work)
    }

    pub(crate) fn spawn<W: Work>(self, work: W) -> Result<RunningMember> {
        self.config.validate()?;
        let (control, rx) = mpsc::channel(1);
        let stats = Arc::new(Counters::default());
        let consumer = self.consumer.clone();
        let task = tokio::spawn(run(self, work, rx, Arc::clone(&stats)));
        Ok(RunningMember {
            consumer,
            control,
            stats,
            task,
        })
    }
}

/// What a member decided for the messages of one read.
#[derive(Debug, Default)]
pub(crate) struct Verdicts {
    /// Handled: ack.
    pub(crate) ack: Vec<DeliveryId>,
    /// Failed, worth another try: nack `retry` with the reason.
    pub(crate) retry: Vec<(DeliveryId, String)>,
    /// Failed for good: nack `park` with the reason.
    pub(crate) park: Vec<(DeliveryId, String)>,
}

/// What a member does with what it reads.
#[async_trait]
pub(crate) trait Work: Send + 'static {
    /// Handles the messages, in order, and says how to settle each.
    async fn handle(&mut self, deliveries: &[Delivery]) -> Verdicts;

    /// After a read's messages were settled, or a read came back empty.
    async fn settled(&mut self, _groups: &dyn ConsumerGroups, _group: &GroupName) {}

    /// The member ends (`failed` says why, if it failed).
    fn stopped(&mut self, _failed: Option<&Error>) {}
}

#[derive(Debug, Default)]
struct Counters {
    deliveries: AtomicU64,
    acked: AtomicU64,
    retried: AtomicU64,
    parked: AtomicU64,
    lost_leases: AtomicU64,
}

impl Counters {
    fn read(&self) -> MemberStats {
        MemberStats {
            deliveries: self.deliveries.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            parked: self.parked.load(Ordering::Relaxed),
            lost_leases: self.lost_leases.load(Ordering::Relaxed),
        }
    }
}

/// A member's counters, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemberStats {
    /// Messages read.
    pub deliveries: u64,
    /// Messages acked.
    pub acked: u64,
    /// Messages nacked with `retry` (the group parks them after
    /// `max_retries`; those count here too).
    pub retried: u64,
    /// Messages nacked with `park` (a projection that failed).
    pub parked: u64,
    /// Messages whose lease was gone when the member settled them (it held
    /// them longer than `ack_timeout_ms`; another consumer got them too).
    pub lost_leases: u64,
}

/// What a member did until it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberReport {
    /// The consumer's name.
    pub consumer: ConsumerId,
    /// Messages read.
    pub deliveries: u64,
    /// Messages acked.
    pub acked: u64,
    /// Messages nacked with `retry`.
    pub retried: u64,
    /// Messages nacked with `park`.
    pub parked: u64,
    /// Messages whose lease was gone when settled.
    pub lost_leases: u64,
}

/// A member running on a task.
pub struct RunningMember {
    consumer: ConsumerId,
    control: mpsc::Sender<()>,
    stats: Arc<Counters>,
    task: JoinHandle<Result<MemberReport>>,
}

impl std::fmt::Debug for RunningMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningMember")
            .field("consumer", &self.consumer)
            .field("stats", &self.stats.read())
            .finish_non_exhaustive()
    }
}

impl RunningMember {
    /// The consumer's name.
    pub fn consumer(&self) -> &ConsumerId {
        &self.consumer
    }

    /// Its counters so far.
    pub fn stats(&self) -> MemberStats {
        self.stats.read()
    }

    /// Whether its task has ended (stopped, or failed: see [`stop`](Self::stop)).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops cleanly: the messages in hand are handled and settled, then the
    /// member leaves the group. Returns what it did, or why it had failed
    /// (the group failing beyond [`MAX_STORE_RETRIES`] retries).
    pub async fn stop(self) -> Result<MemberReport> {
        let _ = self.control.send(()).await;
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Backend(format!(
                "group member `{}` {}",
                self.consumer,
                if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                }
            ))),
        }
    }

    /// Ends the task where it stands, as a crash would: nothing in hand is
    /// settled and the member does not leave; the group hands its leases to
    /// the others once `ack_timeout_ms` passes.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run<W: Work>(
    member: GroupMember,
    mut work: W,
    mut stop: mpsc::Receiver<()>,
    stats: Arc<Counters>,
) -> Result<MemberReport> {
    let result = run_loop(&member, &mut work, &mut stop, &stats).await;
    let left = retrying(&member, "leave", || {
        member.groups.leave(&member.group, &member.consumer)
    })
    .await;
    work.stopped(result.as_ref().err());
    if let Err(e) = &result {
        tracing::error!(group = %member.group, consumer = %member.consumer, error = %e, "group member failed");
    }
    result?;
    left?;
    let s = stats.read();
    Ok(MemberReport {
        consumer: member.consumer,
        deliveries: s.deliveries,
        acked: s.acked,
        retried: s.retried,
        parked: s.parked,
        lost_leases: s.lost_leases,
    })
}

async fn run_loop<W: Work>(
    m: &GroupMember,
    work: &mut W,
    stop: &mut mpsc::Receiver<()>,
    stats: &Counters,
) -> Result<()> {
    let wait = Duration::from_millis(m.config.read_wait_ms);
    loop {
        let read = retrying(m, "read", || {
            m.groups
                .read(&m.group, &m.consumer, m.config.read_max, wait)
        });
        let deliveries = tokio::select! {
            biased;
            // Asked to stop, or every handle to the member is gone.
            _ = stop.recv() => return Ok(()),
            read = read => read?,
        };
        if !deliveries.is_empty() {
            bump(&stats.deliveries, deliveries.len());
            let verdicts = work.handle(&deliveries).await;
            settle(m, verdicts, stats).await?;
        }
        work.settled(m.groups.as_ref(), &m.group).await;
    }
}

/// Acks and nacks what one read's handling decided.
async fn settle(m: &GroupMember, v: Verdicts, stats: &Counters) -> Result<()> {
    if !v.ack.is_empty() {
        let r = retrying(m, "ack", || m.groups.ack(&m.group, &m.consumer, &v.ack)).await?;
        bump(&stats.acked, r.settled as usize);
        lost(m, stats, r.unknown);
    }
    for (action, list, counter) in [
        (NackAction::Retry, &v.retry, &stats.retried),
        (NackAction::Park, &v.park, &stats.parked),
    ] {
        for (id, reason) in list {
            let reason = clip(reason);
            let ids = [*id];
            let r = retrying(m, "nack", || {
                m.groups.nack(&m.group, &m.consumer, &ids, action, reason)
            })
            .await?;
            bump(counter, r.settled as usize);
            lost(m, stats, r.unknown);
        }
    }
    Ok(())
}

fn lost(m: &GroupMember, stats: &Counters, unknown: u64) {
    if unknown > 0 {
        tracing::warn!(
            group = %m.group,
            consumer = %m.consumer,
            messages = unknown,
            "leases ended before the member settled them (handling took longer than ack_timeout_ms?); \
             another consumer may handle them too"
        );
        bump(&stats.lost_leases, unknown as usize);
    }
}

/// A reason cut to the group's limit, at a character boundary.
fn clip(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_BYTES {
        return reason;
    }
    let mut end = MAX_REASON_BYTES;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

fn bump(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// Calls the group, retrying transient failures up to [`MAX_STORE_RETRIES`]
/// times with a growing delay.
async fn retrying<T, F, Fut>(m: &GroupMember, what: &str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut failures = 0u32;
    loop {
        match call().await {
            Ok(t) => return Ok(t),
            Err(e) if retryable(&e) && failures < MAX_STORE_RETRIES => {
                tracing::warn!(group = %m.group, consumer = %m.consumer, error = %e, "{what} failed; retrying");
                tokio::time::sleep(retry_delay(failures)).await;
                failures += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
