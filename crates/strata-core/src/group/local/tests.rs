use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::event::NewEvent;
use crate::filter::ReadFilter;
use crate::group::Strategy;
use crate::stream_id::StreamId;
use crate::version::ExpectedVersion;
use crate::MemoryStore;

fn name(n: &str) -> GroupName {
    GroupName::new(n).unwrap()
}

fn consumer(n: &str) -> ConsumerId {
    ConsumerId::new(n).unwrap()
}

async fn fill(store: &MemoryStore, streams: usize, per_stream: usize) {
    for round in 0..per_stream {
        for s in 0..streams {
            let stream = StreamId::new(format!("order-{s}")).unwrap();
            let e = NewEvent::json("Placed", &serde_json::json!({"round": round})).unwrap();
            store
                .append(&stream, ExpectedVersion::Any, vec![e])
                .await
                .unwrap();
        }
    }
}

/// Reads until `n` messages came (or a second passed).
async fn read_n<S: EventStore + Clone + 'static>(
    groups: &LocalGroups<S>,
    g: &GroupName,
    c: &ConsumerId,
    n: usize,
) -> Vec<Delivery> {
    let mut out = Vec::new();
    let began = std::time::Instant::now();
    while out.len() < n && began.elapsed() < Duration::from_secs(1) {
        out.extend(
            groups
                .read(g, c, n - out.len(), Duration::from_millis(100))
                .await
                .unwrap(),
        );
    }
    out
}

/// The position of the last event of an `order-` stream.
async fn last_order(store: &MemoryStore) -> Position {
    let all = store
        .read_all(
            Position::START,
            100_000,
            &ReadFilter::all().category("order"),
        )
        .await
        .unwrap();
    all.last().unwrap().position
}

fn all_orders(strategy: Strategy) -> GroupSettings {
    GroupSettings {
        strategy,
        max_in_flight: 50,
        ack_timeout_ms: 300,
        max_retries: 2,
        retry_backoff_ms: 10,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all().category("order")))
    }
}

/// Runs `n` consumers until `total` events were acked; what each handled,
/// in order, as (stream, version).
async fn consume(
    groups: Arc<LocalGroups<MemoryStore>>,
    group: GroupName,
    n: usize,
    total: usize,
) -> Vec<Vec<(String, u64)>> {
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (groups, group, done) = (Arc::clone(&groups), group.clone(), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let me = consumer(&format!("c{i}"));
            let mut seen = Vec::new();
            while done.load(std::sync::atomic::Ordering::SeqCst) < total {
                let got = groups
                    .read(&group, &me, 20, Duration::from_millis(50))
                    .await
                    .unwrap();
                let ids: Vec<DeliveryId> = got.iter().map(|d| d.delivery_id).collect();
                for d in &got {
                    seen.push((d.event.stream_id.as_str().to_owned(), d.event.version));
                }
                let r = groups.ack(&group, &me, &ids).await.unwrap();
                assert_eq!(r.unknown, 0);
                done.fetch_add(r.settled as usize, std::sync::atomic::Ordering::SeqCst);
            }
            seen
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_consumers_share_every_event_once_and_pinned_keeps_stream_order() {
    for strategy in [Strategy::RoundRobin, Strategy::Pinned] {
        let store = MemoryStore::new();
        fill(&store, 20, 100).await;
        let groups = Arc::new(LocalGroups::new(store.clone()));
        let g = name("billing");
        groups.put_group(&g, all_orders(strategy)).await.unwrap();
        let seen = consume(Arc::clone(&groups), g.clone(), 4, 2_000).await;
        let all: Vec<&(String, u64)> = seen.iter().flatten().collect();
        assert_eq!(all.len(), 2_000, "{strategy:?}: every event once");
        let distinct: HashSet<&(String, u64)> = all.iter().copied().collect();
        assert_eq!(distinct.len(), 2_000);
        if strategy == Strategy::Pinned {
            // Per stream, handling order is version order across consumers:
            // with one event of a stream in flight at a time, each
            // consumer's list is ordered and versions never interleave
            // back.
            for list in &seen {
                let mut last: HashMap<&str, u64> = HashMap::new();
                for (s, v) in list {
                    let prev = last.insert(s.as_str(), *v).unwrap_or(0);
                    assert!(*v > prev, "{s} went from {prev} to {v}");
                }
            }
        }
        let status = groups.group_status(&g).await.unwrap().unwrap();
        assert_eq!(status.in_flight, 0);
        assert_eq!(status.acked_total, 2_000);
        assert!(status.checkpoint >= last_order(&store).await);
    }
}

#[tokio::test]
async fn a_silent_consumer_loses_its_leases_to_the_others() {
    let store = MemoryStore::new();
    fill(&store, 2, 5).await;
    let groups = LocalGroups::new(store.clone());
    let g = name("g");
    groups
        .put_group(&g, all_orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let (dead, alive) = (consumer("dead"), consumer("alive"));
    let held = read_n(&groups, &g, &dead, 4).await;
    assert_eq!(held.len(), 4);
    let rest = read_n(&groups, &g, &alive, 6).await;
    assert_eq!(rest.len(), 6);
    let ids: Vec<DeliveryId> = rest.iter().map(|d| d.delivery_id).collect();
    groups.ack(&g, &alive, &ids).await.unwrap();
    let began = std::time::Instant::now();
    let again = groups
        .read(&g, &alive, 100, Duration::from_secs(2))
        .await
        .unwrap();
    let waited = began.elapsed();
    assert_eq!(again.len(), 4, "the dead consumer's events come back");
    assert!(again.iter().all(|d| d.delivery_count == 2));
    assert!(
        waited < Duration::from_millis(1_000),
        "within the ack timeout: {waited:?}"
    );
    let late = held.iter().map(|d| d.delivery_id).collect::<Vec<_>>();
    let r = groups.ack(&g, &dead, &late).await.unwrap();
    assert_eq!((r.settled, r.unknown), (0, 4), "its old leases are gone");
}

#[tokio::test]
async fn a_consumer_that_leaves_hands_its_leases_back_at_once() {
    let store = MemoryStore::new();
    fill(&store, 1, 3).await;
    let groups = LocalGroups::new(store.clone());
    let g = name("g");
    groups
        .put_group(&g, all_orders(Strategy::Single))
        .await
        .unwrap();
    let (a, b) = (consumer("a"), consumer("b"));
    assert_eq!(read_n(&groups, &g, &a, 3).await.len(), 3);
    assert!(groups
        .read(&g, &b, 10, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    groups.leave(&g, &a).await.unwrap();
    assert_eq!(read_n(&groups, &g, &b, 3).await.len(), 3);
}

#[tokio::test]
async fn a_failing_event_is_retried_then_parked_and_replayed() {
    let store = MemoryStore::new();
    fill(&store, 1, 3).await;
    let groups = LocalGroups::new(store.clone());
    let g = name("g");
    groups
        .put_group(&g, all_orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let c = consumer("c");
    let mut handled = Vec::new();
    let mut attempts = 0;
    while handled.len() < 2 {
        let got = groups
            .read(&g, &c, 10, Duration::from_millis(200))
            .await
            .unwrap();
        for d in got {
            if d.event.version == 2 {
                attempts += 1;
                assert_eq!(d.delivery_count, attempts);
                groups
                    .nack(&g, &c, &[d.delivery_id], NackAction::Retry, "poison")
                    .await
                    .unwrap();
            } else {
                handled.push(d.event.version);
                groups.ack(&g, &c, &[d.delivery_id]).await.unwrap();
            }
        }
    }
    // Wait until the poison event has used its retries.
    while attempts < 3 {
        for d in groups
            .read(&g, &c, 10, Duration::from_millis(200))
            .await
            .unwrap()
        {
            attempts += 1;
            groups
                .nack(&g, &c, &[d.delivery_id], NackAction::Retry, "poison")
                .await
                .unwrap();
        }
    }
    let parked = groups.parked(&g, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].event.version, parked[0].delivery_count), (2, 3));
    assert_eq!(parked[0].reason, "poison");
    let status = groups.group_status(&g).await.unwrap().unwrap();
    assert_eq!(status.parked, 1);
    assert!(status.checkpoint >= last_order(&store).await);
    assert_eq!(groups.replay_parked(&g, 10).await.unwrap(), 1);
    let again = groups
        .read(&g, &c, 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.version, 2);
    groups.ack(&g, &c, &[again[0].delivery_id]).await.unwrap();
    assert!(groups.parked(&g, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn after_a_restart_only_unacked_events_come_again() {
    let store = MemoryStore::new();
    fill(&store, 10, 100).await;
    let g = name("g");
    let mut acked: BTreeMap<Position, ()> = BTreeMap::new();
    {
        let groups = LocalGroups::new(store.clone());
        groups
            .put_group(&g, all_orders(Strategy::RoundRobin))
            .await
            .unwrap();
        let c = consumer("c");
        // 400 acks of one event each: more than one checkpoint record.
        for i in 0..450 {
            let got = read_n(&groups, &g, &c, 2).await;
            // Ack the second of each pair, leave every 50th first one unacked.
            groups.ack(&g, &c, &[got[1].delivery_id]).await.unwrap();
            acked.insert(got[1].event.position, ());
            if i % 50 != 0 {
                groups.ack(&g, &c, &[got[0].delivery_id]).await.unwrap();
                acked.insert(got[0].event.position, ());
            } else {
                groups.leave(&g, &c).await.unwrap();
            }
        }
    }
    let groups = LocalGroups::new(store.clone());
    let c = consumer("again");
    let mut again = Vec::new();
    loop {
        let got = groups
            .read(&g, &c, 100, Duration::from_millis(100))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        let ids: Vec<DeliveryId> = got.iter().map(|d| d.delivery_id).collect();
        again.extend(got.iter().map(|d| d.event.position));
        groups.ack(&g, &c, &ids).await.unwrap();
    }
    let twice: Vec<&Position> = again.iter().filter(|p| acked.contains_key(p)).collect();
    assert!(twice.is_empty(), "acked events delivered again: {twice:?}");
    assert_eq!(acked.len() + again.len(), 1_000, "no event lost");
}

#[tokio::test]
async fn definitions_are_durable_validated_and_deletable() {
    let store = MemoryStore::new();
    let groups = LocalGroups::new(store.clone());
    let g = name("g");
    let missing = groups.read(&g, &consumer("c"), 1, Duration::ZERO).await;
    assert_eq!(missing.unwrap_err().kind(), "group_not_found");
    let bad = GroupSettings {
        max_in_flight: 0,
        ..all_orders(Strategy::Pinned)
    };
    assert_eq!(
        groups.put_group(&g, bad).await.unwrap_err().kind(),
        "invalid_input"
    );
    groups
        .put_group(&g, all_orders(Strategy::Pinned))
        .await
        .unwrap();
    let update = GroupSettings {
        max_retries: 7,
        ..all_orders(Strategy::Pinned)
    };
    groups.put_group(&g, update).await.unwrap();
    let other_source = GroupSettings::new(GroupSource::Stream(StreamId::new("x").unwrap()));
    assert_eq!(
        groups.put_group(&g, other_source).await.unwrap_err().kind(),
        "invalid_input"
    );
    let reopened = LocalGroups::new(store.clone());
    let listed = reopened.list_groups().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].settings.max_retries, 7);
    // A group no call has loaded yet reports its durable checkpoint.
    fill(&store, 1, 3).await;
    // (Pinned: one event of the stream in flight at a time.)
    for _ in 0..3 {
        let c = consumer("c");
        let got = read_n(&reopened, &g, &c, 1).await;
        let ids: Vec<DeliveryId> = got.iter().map(|d| d.delivery_id).collect();
        reopened.ack(&g, &c, &ids).await.unwrap();
    }
    let fresh = LocalGroups::new(store.clone());
    let status = fresh.list_groups().await.unwrap();
    assert!(
        status[0].checkpoint >= last_order(&store).await,
        "{status:?}"
    );
    assert!(reopened.delete_group(&g).await.unwrap());
    assert!(!reopened.delete_group(&g).await.unwrap());
    assert!(LocalGroups::new(store)
        .list_groups()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_group_on_all_never_delivers_system_events_and_end_starts_after_the_head() {
    let store = MemoryStore::new();
    fill(&store, 1, 2).await;
    let groups = LocalGroups::new(store.clone());
    let everything = GroupSettings {
        start: GroupStart::End,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    };
    let g = name("g");
    groups.put_group(&g, everything).await.unwrap();
    fill(&store, 1, 1).await;
    let c = consumer("c");
    let got = groups
        .read(&g, &c, 100, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.version, 3);
    groups.ack(&g, &c, &[got[0].delivery_id]).await.unwrap();
    let more = groups
        .read(&g, &c, 100, Duration::from_millis(100))
        .await
        .unwrap();
    assert!(
        more.is_empty(),
        "its own records are not delivered: {more:?}"
    );
}
