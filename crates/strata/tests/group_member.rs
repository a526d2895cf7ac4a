//! Processors and projection runners as members of a consumer group, over
//! a `MemoryStore` with the in-process `LocalGroups`.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use strata::group::{
    ConsumerGroups, ConsumerId, GroupMember, GroupName, GroupSettings, GroupSource, LocalGroups,
    MemberConfig, RunningMember, Strategy,
};
use strata::processor::{EventHandler, HandlerError};
use strata::*;

const STREAMS: usize = 20;
const PER_STREAM: usize = 100;
const TOTAL: usize = STREAMS * PER_STREAM;
/// Long enough that a loaded machine does not time leases out where a
/// test counts exact handling.
const ACK_TIMEOUT_MS: u64 = 2_000;
/// For the test where a crashed member's leases must time out.
const SHORT_ACK_TIMEOUT_MS: u64 = 300;

/// `per_stream` rounds of one event in each of `streams` `order-` streams
/// (so streams interleave in `$all`); the last position.
async fn fill(store: &MemoryStore, first_round: usize, rounds: usize) -> Position {
    let mut last = Position::START;
    for round in first_round..first_round + rounds {
        for s in 0..STREAMS {
            let stream = StreamId::new(format!("order-{s}")).unwrap();
            let e = NewEvent::json("OrderPlaced", &serde_json::json!({ "round": round })).unwrap();
            last = store
                .append(&stream, ExpectedVersion::Any, vec![e])
                .await
                .unwrap()
                .last_position;
        }
    }
    last
}

fn settings(strategy: Strategy, ack_timeout_ms: u64) -> GroupSettings {
    GroupSettings {
        strategy,
        max_in_flight: 50,
        ack_timeout_ms,
        max_retries: 2,
        retry_backoff_ms: 10,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all().category("order")))
    }
}

async fn new_group(
    store: &MemoryStore,
    strategy: Strategy,
) -> (Arc<dyn ConsumerGroups>, GroupName) {
    group_with_timeout(store, strategy, ACK_TIMEOUT_MS).await
}

async fn group_with_timeout(
    store: &MemoryStore,
    strategy: Strategy,
    ack_timeout_ms: u64,
) -> (Arc<dyn ConsumerGroups>, GroupName) {
    let groups: Arc<dyn ConsumerGroups> = Arc::new(LocalGroups::new(store.clone()));
    let group = GroupName::new("orders").unwrap();
    groups
        .put_group(&group, settings(strategy, ack_timeout_ms))
        .await
        .unwrap();
    (groups, group)
}

fn member(groups: &Arc<dyn ConsumerGroups>, group: &GroupName, name: &str) -> GroupMember {
    GroupMember::new(
        Arc::clone(groups),
        group.clone(),
        ConsumerId::new(name).unwrap(),
    )
    .with_config(MemberConfig {
        read_max: 20,
        read_wait_ms: 50,
    })
}

/// Waits (at most `max`) until `done` holds; whether it did.
async fn wait_until(max: Duration, mut done: impl FnMut() -> bool) -> bool {
    let began = Instant::now();
    while !done() {
        if began.elapsed() > max {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

async fn checkpoint(groups: &Arc<dyn ConsumerGroups>, group: &GroupName) -> Position {
    groups
        .group_status(group)
        .await
        .unwrap()
        .unwrap()
        .checkpoint
}

/// Waits until the group's checkpoint reaches `last`.
async fn wait_for_checkpoint(groups: &Arc<dyn ConsumerGroups>, group: &GroupName, last: Position) {
    let began = Instant::now();
    while checkpoint(groups, group).await < last {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "the group's checkpoint did not reach {last}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One handled event: by whom, which stream, which version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Seen {
    by: String,
    stream: String,
    version: u64,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records every event it handles in a log shared by every member; can
/// fail on one event, stall forever, or take a while per event.
struct Recorder {
    me: String,
    log: Log,
    /// Fails on this (stream, version) while `failing` is set.
    poison: Option<(String, u64)>,
    failing: Arc<AtomicBool>,
    attempts_on_poison: Arc<AtomicU64>,
    /// Never returns once set (a hung member).
    stall: Arc<AtomicBool>,
    per_event: Duration,
}

impl Recorder {
    fn new(me: &str, log: &Log) -> Self {
        Recorder {
            me: me.to_owned(),
            log: Arc::clone(log),
            poison: None,
            failing: Arc::new(AtomicBool::new(false)),
            attempts_on_poison: Arc::new(AtomicU64::new(0)),
            stall: Arc::new(AtomicBool::new(false)),
            per_event: Duration::ZERO,
        }
    }
}

#[async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), HandlerError> {
        if self.stall.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if !self.per_event.is_zero() {
            tokio::time::sleep(self.per_event).await;
        }
        let key = (event.stream_id.as_str().to_owned(), event.version);
        if self.poison.as_ref() == Some(&key) {
            self.attempts_on_poison.fetch_add(1, Ordering::SeqCst);
            if self.failing.load(Ordering::SeqCst) {
                return Err("boom".into());
            }
        }
        self.log.lock().push(Seen {
            by: self.me.clone(),
            stream: key.0,
            version: key.1,
        });
        Ok(())
    }
}

fn processor_member(store: &MemoryStore, m: GroupMember, handler: Recorder) -> RunningMember {
    EventProcessor::new(
        "orders",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_config(ProcessorConfig {
        batch_events: 8,
        ..Default::default()
    })
    .on("OrderPlaced", handler)
    .run_in_group(m)
    .unwrap()
}

fn distinct(log: &[Seen]) -> HashSet<(String, u64)> {
    log.iter().map(|s| (s.stream.clone(), s.version)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processor_members_share_every_event_once_and_pinned_keeps_stream_order() {
    for strategy in [Strategy::RoundRobin, Strategy::Pinned] {
        let store = MemoryStore::new();
        let last = fill(&store, 0, PER_STREAM).await;
        let (groups, group) = new_group(&store, strategy).await;
        let log: Log = Arc::default();
        let members: Vec<RunningMember> = (0..4)
            .map(|i| {
                let me = format!("c{i}");
                processor_member(
                    &store,
                    member(&groups, &group, &me),
                    Recorder::new(&me, &log),
                )
            })
            .collect();
        wait_for_checkpoint(&groups, &group, last).await;
        let mut acked = 0;
        for m in members {
            let report = m.stop().await.unwrap();
            assert_eq!((report.retried, report.lost_leases), (0, 0), "{report:?}");
            acked += report.acked;
        }
        let log = log.lock().clone();
        assert_eq!(acked, TOTAL as u64, "{strategy:?}: every event acked once");
        assert_eq!(log.len(), TOTAL, "{strategy:?}: every event handled once");
        assert_eq!(distinct(&log).len(), TOTAL);
        let status = groups.group_status(&group).await.unwrap().unwrap();
        assert_eq!((status.consumers, status.in_flight), (0, 0), "members left");
        if strategy == Strategy::Pinned {
            // The log is in handling order across members: per stream, it
            // is version order.
            let mut at: HashMap<&str, u64> = HashMap::new();
            for s in &log {
                let prev = at.insert(s.stream.as_str(), s.version).unwrap_or(0);
                assert_eq!(
                    s.version,
                    prev + 1,
                    "{} went from {prev} to {}",
                    s.stream,
                    s.version
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_then_parked_while_the_rest_flow() {
    let store = MemoryStore::new();
    let last = fill(&store, 0, PER_STREAM).await;
    let (groups, group) = new_group(&store, Strategy::RoundRobin).await;
    let log: Log = Arc::default();
    let failing = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicU64::new(0));
    let members: Vec<RunningMember> = (0..4)
        .map(|i| {
            let me = format!("c{i}");
            let mut h = Recorder::new(&me, &log);
            h.poison = Some(("order-3".to_owned(), 5));
            h.failing = Arc::clone(&failing);
            h.attempts_on_poison = Arc::clone(&attempts);
            processor_member(&store, member(&groups, &group, &me), h)
        })
        .collect();
    wait_for_checkpoint(&groups, &group, last).await;
    // One delivery plus `max_retries` retries, then parked.
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let parked = groups.parked(&group, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(
        (parked[0].event.stream_id.as_str(), parked[0].event.version),
        ("order-3", 5)
    );
    assert_eq!(parked[0].delivery_count, 3);
    assert!(
        parked[0].reason.contains("handler `recorder` failed: boom"),
        "{}",
        parked[0].reason
    );
    {
        let log = log.lock();
        assert_eq!(log.len(), TOTAL - 1, "every other event handled once");
        assert_eq!(distinct(&log).len(), TOTAL - 1);
    }
    // Fixed: replaying the parked list delivers it again.
    failing.store(false, Ordering::SeqCst);
    assert_eq!(groups.replay_parked(&group, 10).await.unwrap(), 1);
    assert!(wait_until(Duration::from_secs(5), || log.lock().len() == TOTAL).await);
    assert_eq!(distinct(&log.lock()).len(), TOTAL);
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    let mut retried = 0;
    for m in members {
        retried += m.stop().await.unwrap().retried;
    }
    assert_eq!(
        retried, 3,
        "three nacks with retry; the group parked the third"
    );
    assert!(groups.parked(&group, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_members_unacked_events_reach_the_others() {
    let store = MemoryStore::new();
    let last = fill(&store, 0, PER_STREAM).await;
    let (groups, group) =
        group_with_timeout(&store, Strategy::RoundRobin, SHORT_ACK_TIMEOUT_MS).await;
    let log: Log = Arc::default();
    // c0 hangs on the first event it gets, holding its leases.
    let mut hung = Recorder::new("c0", &log);
    hung.stall = Arc::new(AtomicBool::new(true));
    let c0 = processor_member(&store, member(&groups, &group, "c0"), hung);
    assert!(wait_until(Duration::from_secs(5), || c0.stats().deliveries > 0).await);
    let held = c0.stats().deliveries;
    let others: Vec<RunningMember> = (1..4)
        .map(|i| {
            let me = format!("c{i}");
            processor_member(
                &store,
                member(&groups, &group, &me),
                Recorder::new(&me, &log),
            )
        })
        .collect();
    let crashed_at = Instant::now();
    c0.abort().await;
    wait_for_checkpoint(&groups, &group, last).await;
    // Within ack_timeout_ms plus a margin.
    assert!(
        crashed_at.elapsed() < Duration::from_millis(SHORT_ACK_TIMEOUT_MS + 3_000),
        "took {:?}",
        crashed_at.elapsed()
    );
    for m in others {
        m.stop().await.unwrap();
    }
    let log = log.lock();
    assert!(held > 0);
    assert!(log.iter().all(|s| s.by != "c0"), "c0 handled nothing");
    assert_eq!(
        distinct(&log).len(),
        TOTAL,
        "its {held} leased events reached the others"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_midway_hands_the_rest_to_the_others_without_duplicates() {
    let store = MemoryStore::new();
    let last = fill(&store, 0, PER_STREAM).await;
    let (groups, group) = new_group(&store, Strategy::Pinned).await;
    let log: Log = Arc::default();
    let mut members: Vec<RunningMember> = (0..4)
        .map(|i| {
            let me = format!("c{i}");
            let mut h = Recorder::new(&me, &log);
            h.per_event = Duration::from_micros(200);
            processor_member(&store, member(&groups, &group, &me), h)
        })
        .collect();
    let c0 = members.remove(0);
    assert!(wait_until(Duration::from_secs(10), || c0.stats().acked >= 50).await);
    let report = c0.stop().await.unwrap();
    assert!(checkpoint(&groups, &group).await < last, "stopped mid-way");
    wait_for_checkpoint(&groups, &group, last).await;
    for m in members {
        m.stop().await.unwrap();
    }
    let log = log.lock();
    let by_c0 = log.iter().filter(|s| s.by == "c0").count() as u64;
    assert_eq!(
        report.acked, by_c0,
        "c0 acked all it handled before leaving"
    );
    assert_eq!(log.len(), TOTAL, "nothing handled twice");
    assert_eq!(distinct(&log).len(), TOTAL);
}

#[tokio::test]
async fn a_processor_with_projections_is_refused_in_a_group() {
    let store = MemoryStore::new();
    let (groups, group) = new_group(&store, Strategy::RoundRobin).await;
    let p = SharedProjection::new(PerStream::default());
    let err = EventProcessor::new(
        "orders",
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
    )
    .with_projection(p)
    .run_in_group(member(&groups, &group, "c0"))
    .unwrap_err();
    assert!(matches!(err, ProcessorError::Config(_)), "{err}");
    let bad = member(&groups, &group, "c1").with_config(MemberConfig {
        read_max: 0,
        read_wait_ms: 50,
    });
    let log: Log = Arc::default();
    let err = bad.spawn_handler(Recorder::new("c1", &log)).unwrap_err();
    assert_eq!(err.kind(), "invalid_input");
}

/// A read model keyed by stream: the versions folded, per stream.
#[derive(Default)]
struct PerStream(HashMap<String, Vec<u64>>);

impl Projection for PerStream {
    fn name(&self) -> &str {
        "per-stream"
    }
    fn update(&mut self, e: &RecordedEvent) -> Result<(), ProjectionError> {
        self.0
            .entry(e.stream_id.as_str().to_owned())
            .or_default()
            .push(e.version);
        Ok(())
    }
    fn reset(&mut self) {
        self.0.clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_projection_runners_each_fold_their_share_in_stream_order() {
    let store = MemoryStore::new();
    let last = fill(&store, 0, PER_STREAM).await;
    let (groups, group) = new_group(&store, Strategy::Pinned).await;
    let mut instances = Vec::new();
    for i in 0..3 {
        let runner = ProjectionRunner::new(
            store.clone(),
            Arc::new(MemoryCheckpointStore::new()),
            PerStream::default(),
        );
        let shared = runner.projection().clone();
        let running = runner
            .run_in_group(member(&groups, &group, &format!("p{i}")))
            .unwrap();
        instances.push((shared, running));
    }
    wait_for_checkpoint(&groups, &group, last).await;
    let mut union: HashMap<String, Vec<u64>> = HashMap::new();
    for (shared, running) in instances {
        // Its position is the group's checkpoint.
        let progress = shared.wait_for(last, Duration::from_secs(5)).await.unwrap();
        assert_eq!(progress.status, ProjectionStatus::Live);
        running.stop().await.unwrap();
        assert_eq!(shared.progress().status, ProjectionStatus::Stopped);
        shared
            .read(|p| {
                for (stream, versions) in &p.0 {
                    assert!(
                        versions.windows(2).all(|w| w[0] < w[1]),
                        "{stream} folded out of order: {versions:?}"
                    );
                    union.entry(stream.clone()).or_default().extend(versions);
                }
            })
            .await;
    }
    assert_eq!(union.len(), STREAMS);
    let expected: Vec<u64> = (1..=PER_STREAM as u64).collect();
    for (stream, mut versions) in union {
        versions.sort_unstable();
        assert_eq!(versions, expected, "{stream}: every version folded once");
    }
}

/// A durable read model: rows in a "table" that outlives each instance.
struct Ledger {
    me: String,
    table: Arc<Mutex<Vec<(String, Position)>>>,
    commits: Arc<AtomicU64>,
}

#[async_trait]
impl Projection for Ledger {
    fn name(&self) -> &str {
        "ledger"
    }
    fn filter(&self) -> ReadFilter {
        ReadFilter::all().category("order")
    }
    fn update(&mut self, e: &RecordedEvent) -> Result<(), ProjectionError> {
        self.table.lock().push((self.me.clone(), e.position));
        Ok(())
    }
    fn reset(&mut self) {
        self.table.lock().clear();
    }
    fn is_durable(&self) -> bool {
        true
    }
    async fn commit(&mut self, _position: Position) -> Result<(), ProjectionError> {
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_projection_fails_over_and_continues_from_the_groups_checkpoint() {
    let store = MemoryStore::new();
    let first_last = fill(&store, 0, 25).await;
    let (groups, group) = new_group(&store, Strategy::Single).await;
    let table: Arc<Mutex<Vec<(String, Position)>>> = Arc::default();
    let commits = Arc::new(AtomicU64::new(0));
    let instance = |me: &str| {
        let ledger = Ledger {
            me: me.to_owned(),
            table: Arc::clone(&table),
            commits: Arc::clone(&commits),
        };
        let runner = ProjectionRunner::new(
            store.clone(),
            Arc::new(MemoryCheckpointStore::new()),
            ledger,
        );
        let shared = runner.projection().clone();
        (
            shared,
            runner.run_in_group(member(&groups, &group, me)).unwrap(),
        )
    };
    let (a, running_a) = instance("a");
    assert!(wait_until(Duration::from_secs(5), || a.progress().events_applied > 0).await);
    let (b, running_b) = instance("b");
    wait_for_checkpoint(&groups, &group, first_last).await;
    // A standby gets nothing while the active one lives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.progress().events_applied, 0);
    assert_eq!(a.progress().events_applied, 25 * STREAMS as u64);
    assert!(commits.load(Ordering::SeqCst) > 0, "commit ran before acks");
    let report = running_a.stop().await.unwrap();
    assert_eq!(report.acked, 25 * STREAMS as u64);
    assert!(checkpoint(&groups, &group).await >= first_last);

    let second_last = fill(&store, 25, 25).await;
    wait_for_checkpoint(&groups, &group, second_last).await;
    assert_eq!(b.progress().events_applied, 25 * STREAMS as u64);
    b.wait_for(second_last, Duration::from_secs(5))
        .await
        .unwrap();
    running_b.stop().await.unwrap();

    let table = table.lock();
    assert_eq!(table.len(), 50 * STREAMS, "every event folded once");
    assert!(
        table.windows(2).all(|w| w[0].1 < w[1].1),
        "one active instance at a time: position order"
    );
    let (a_rows, b_rows) = table.split_at(25 * STREAMS);
    assert!(a_rows.iter().all(|(me, _)| me == "a"));
    assert!(b_rows.iter().all(|(me, _)| me == "b"));
    assert!(
        b_rows[0].1 > first_last,
        "b continued after the group's checkpoint"
    );
}

/// Refuses one event; its commits fail while `commit_fails` is set.
struct Picky {
    folded: Vec<(String, u64)>,
    commit_fails: Arc<AtomicBool>,
}

#[async_trait]
impl Projection for Picky {
    fn name(&self) -> &str {
        "picky"
    }
    fn update(&mut self, e: &RecordedEvent) -> Result<(), ProjectionError> {
        if (e.stream_id.as_str(), e.version) == ("order-2", 3) {
            return Err(ProjectionError::failed("cannot fold this one"));
        }
        self.folded
            .push((e.stream_id.as_str().to_owned(), e.version));
        Ok(())
    }
    fn reset(&mut self) {
        self.folded.clear();
    }
    fn is_durable(&self) -> bool {
        true
    }
    async fn commit(&mut self, _position: Position) -> Result<(), ProjectionError> {
        if self.commit_fails.load(Ordering::SeqCst) {
            return Err(ProjectionError::failed("the table is locked"));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_parks_what_it_cannot_fold_and_retries_what_it_cannot_commit() {
    let store = MemoryStore::new();
    let last = fill(&store, 0, 5).await;
    let (groups, group) = new_group(&store, Strategy::Single).await;
    // Retry budget enough for the commit to recover before parking.
    let roomy = GroupSettings {
        max_retries: 10,
        ..settings(Strategy::Single, ACK_TIMEOUT_MS)
    };
    groups.put_group(&group, roomy).await.unwrap();
    let commit_fails = Arc::new(AtomicBool::new(true));
    let runner = ProjectionRunner::new(
        store.clone(),
        Arc::new(MemoryCheckpointStore::new()),
        Picky {
            folded: Vec::new(),
            commit_fails: Arc::clone(&commit_fails),
        },
    );
    let shared = runner.projection().clone();
    let running = runner.run_in_group(member(&groups, &group, "p0")).unwrap();
    // Commits fail: nothing is acked, the batch is retried.
    assert!(wait_until(Duration::from_secs(5), || running.stats().retried > 0).await);
    assert_eq!(running.stats().acked, 0);
    assert!(checkpoint(&groups, &group).await < last);
    commit_fails.store(false, Ordering::SeqCst);
    wait_for_checkpoint(&groups, &group, last).await;
    let parked = groups.parked(&group, 10).await.unwrap();
    assert_eq!(parked.len(), 1, "parked at once, not retried");
    assert_eq!(
        (parked[0].event.stream_id.as_str(), parked[0].event.version),
        ("order-2", 3)
    );
    assert!(
        parked[0]
            .reason
            .contains("projection `picky` failed: cannot fold this one"),
        "{}",
        parked[0].reason
    );
    let report = running.stop().await.unwrap();
    assert_eq!(report.acked, 5 * STREAMS as u64 - 1);
    assert_eq!(report.parked, 1);
    // The retried batches were folded again (at least once): each event at
    // least once, the refused one never.
    let folded: HashSet<(String, u64)> = shared.read(|p| p.folded.iter().cloned().collect()).await;
    assert_eq!(folded.len(), 5 * STREAMS - 1);
    assert!(!folded.contains(&("order-2".to_owned(), 3)));
}
