//! Helpers of the group cases (test code: they panic when something is off).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use strata_core::group::{
    ConsumerGroups, ConsumerId, Delivery, DeliveryId, GroupName, GroupSettings, GroupSource,
    Strategy,
};
use strata_core::{
    EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, StreamAppend, StreamId,
};

/// The longest a helper keeps reading for the messages it expects.
pub const READ_PATIENCE: Duration = Duration::from_secs(5);

/// The least time the sharing cases allow their consumers to ack every
/// event (1,000 in CI) before failing as hung.
pub const SHARE_BOUND_MIN: Duration = Duration::from_secs(40);

/// Extra time allowed per 1,000 events when the sharing cases run at a
/// larger size by hand: the bound only catches a hang, it measures no
/// speed (`strata bench groups` does).
pub const SHARE_BOUND_PER_1000_EVENTS: Duration = Duration::from_secs(10);

/// How long consumers may take to ack `total` events before
/// [`consume`] fails: [`SHARE_BOUND_MIN`], or more for a large size.
pub fn share_bound(total: usize) -> Duration {
    let thousands = u32::try_from(total.div_ceil(1_000)).unwrap_or(u32::MAX);
    SHARE_BOUND_MIN.max(SHARE_BOUND_PER_1000_EVENTS.saturating_mul(thousands))
}

/// How much later than `ack_timeout_ms` a lost lease may come back.
pub const REDELIVERY_MARGIN: Duration = Duration::from_millis(1_500);

pub fn name(n: &str) -> GroupName {
    GroupName::new(n).unwrap()
}

pub fn consumer(n: &str) -> ConsumerId {
    ConsumerId::new(n).unwrap()
}

pub fn stream(n: &str) -> StreamId {
    StreamId::new(n).unwrap()
}

/// Appends `per_stream` rounds of one event to each of `streams` streams
/// `order-0`.., interleaved round by round.
pub async fn fill<S: EventStore>(store: &S, streams: usize, per_stream: usize) {
    for round in 0..per_stream {
        // One atomic append per round, the streams in order: `$all`
        // interleaves them as one append each would, in far fewer commits.
        let parts = (0..streams)
            .map(|s| {
                let e = NewEvent::json("Placed", &json!({ "round": round })).unwrap();
                StreamAppend::new(stream(&format!("order-{s}")), ExpectedVersion::Any, vec![e])
            })
            .collect();
        store.append_multi(parts).await.unwrap();
    }
}

/// The positions of every `order-` event, in order.
pub async fn order_positions<S: EventStore>(store: &S) -> Vec<Position> {
    let filter = ReadFilter::all().category("order");
    let mut out = Vec::new();
    let mut from = Position::START;
    loop {
        let page = store.read_all(from, 500, &filter).await.unwrap();
        let short = page.len() < 500;
        out.extend(page.iter().map(|e| e.position));
        match page.last() {
            Some(last) if !short => from = last.position.next(),
            _ => return out,
        }
    }
}

/// Settings over the `order` category with short timeouts.
pub fn orders(strategy: Strategy) -> GroupSettings {
    GroupSettings {
        strategy,
        max_in_flight: 50,
        ack_timeout_ms: 300,
        max_retries: 2,
        retry_backoff_ms: 10,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all().category("order")))
    }
}

/// Reads until `n` messages came or [`READ_PATIENCE`] passed.
pub async fn read_n<G: ConsumerGroups + ?Sized>(
    groups: &G,
    g: &GroupName,
    c: &ConsumerId,
    n: usize,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    let began = Instant::now();
    while out.len() < n && began.elapsed() < READ_PATIENCE {
        let got = groups
            .read(g, c, n - out.len(), Duration::from_millis(100))
            .await
            .unwrap();
        out.extend(got);
    }
    out
}

/// Reads and acks until a read waiting `quiet` brings nothing; the
/// positions handled.
pub async fn drain<G: ConsumerGroups + ?Sized>(
    groups: &G,
    g: &GroupName,
    c: &ConsumerId,
    quiet: Duration,
) -> Vec<Position> {
    let mut out = Vec::new();
    loop {
        let got = groups.read(g, c, 100, quiet).await.unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got.iter().map(|d| d.event.position));
        let r = groups.ack(g, c, &ids(&got)).await.unwrap();
        assert_eq!(r.settled as usize, got.len(), "its own fresh leases settle");
    }
}

pub fn ids(got: &[Delivery]) -> Vec<DeliveryId> {
    got.iter().map(|d| d.delivery_id).collect()
}

/// Runs `n` consumers until `total` events were acked. Returns what was
/// handled, in the order the messages arrived across all consumers, as
/// (consumer, stream, version, position).
pub async fn consume<G: ConsumerGroups + 'static>(
    groups: Arc<G>,
    group: GroupName,
    n: usize,
    total: usize,
) -> Vec<(usize, String, u64, Position)> {
    let done = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(Vec::new()));
    let began = Instant::now();
    let bound = share_bound(total);
    // Every consumer reads once before any acks: otherwise one task that
    // never has to wait (the store answers at once) can take every event
    // before the others are first scheduled, and sharing is not tested.
    let all_joined = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (groups, group) = (Arc::clone(&groups), group.clone());
        let (done, log) = (Arc::clone(&done), Arc::clone(&log));
        let all_joined = Arc::clone(&all_joined);
        tasks.push(tokio::spawn(async move {
            let me = consumer(&format!("c{i}"));
            let mut first = true;
            while done.load(Ordering::SeqCst) < total {
                assert!(
                    began.elapsed() < bound,
                    "only {} of {total} acked within {bound:?}",
                    done.load(Ordering::SeqCst)
                );
                let got = groups
                    .read(&group, &me, 20, Duration::from_millis(50))
                    .await
                    .unwrap();
                {
                    let mut log = log.lock().unwrap();
                    for d in &got {
                        let e = &d.event;
                        log.push((i, e.stream_id.to_string(), e.version, e.position));
                    }
                }
                if std::mem::take(&mut first) {
                    all_joined.wait().await;
                }
                let r = groups.ack(&group, &me, &ids(&got)).await.unwrap();
                assert_eq!(r.unknown, 0, "acks of fresh leases are known");
                done.fetch_add(r.settled as usize, Ordering::SeqCst);
            }
            groups.leave(&group, &me).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let log = std::mem::take(&mut *log.lock().unwrap());
    log
}

/// Waits until `check` holds of the group's status, for up to
/// [`READ_PATIENCE`].
pub async fn status_until<G: ConsumerGroups + ?Sized>(
    groups: &G,
    g: &GroupName,
    what: &str,
    check: impl Fn(&strata_core::group::GroupStatus) -> bool,
) -> strata_core::group::GroupStatus {
    let began = Instant::now();
    loop {
        let s = groups.group_status(g).await.unwrap().unwrap();
        if check(&s) {
            return s;
        }
        assert!(began.elapsed() < READ_PATIENCE, "{what}: status {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
