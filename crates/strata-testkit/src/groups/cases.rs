//! The cases of the group conformance suite.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use strata_core::group::{
    ConsumerGroups, GroupSettings, GroupSource, GroupStart, NackAction, Strategy,
};
use strata_core::{EventStore, ExpectedVersion, NewEvent, Position, ReadFilter};

use super::support::*;
use super::GroupsHarness;

const TOTAL_STREAMS: usize = 20;
/// Events per stream of the sharing cases in CI: 1,000 events in all.
const PER_STREAM: usize = 50;
/// Set to an event count to run the sharing cases at that size by hand
/// (`STRATA_GROUP_TEST_EVENTS=100000`, the full size).
pub const GROUP_TEST_EVENTS_ENV: &str = "STRATA_GROUP_TEST_EVENTS";

/// Events per stream of the sharing cases: [`PER_STREAM`], or
/// [`GROUP_TEST_EVENTS_ENV`] spread over the streams.
fn per_stream() -> usize {
    std::env::var(GROUP_TEST_EVENTS_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(PER_STREAM, |n| n.div_ceil(TOTAL_STREAMS).max(1))
}

/// The lease time of the sharing cases.
const SHARE_ACK_TIMEOUT_MS: u64 = 30_000;

/// How many events the sharing cases consume: 1,000 in CI, or
/// [`GROUP_TEST_EVENTS_ENV`] rounded up to a multiple of the streams.
pub fn sharing_events() -> usize {
    TOTAL_STREAMS * per_stream()
}

/// How long one group case may run: the conformance
/// [`CASE_TIMEOUT`](crate::conformance::CASE_TIMEOUT), plus the sharing
/// bound ([`share_bound`]) when the cases run at a larger size by hand.
pub fn case_timeout() -> Duration {
    let total = sharing_events();
    let base = crate::conformance::CASE_TIMEOUT;
    if total <= TOTAL_STREAMS * PER_STREAM {
        base
    } else {
        base + share_bound(total)
    }
}

async fn share<H: GroupsHarness>(h: &H, strategy: Strategy) -> Vec<(usize, String, u64, Position)> {
    let store = h.open_store().await;
    let per_stream = per_stream();
    fill(&store, TOTAL_STREAMS, per_stream).await;
    let total = TOTAL_STREAMS * per_stream;
    let groups = Arc::new(h.groups(&store).await);
    let g = name("billing");
    // Sharing is the point here, not redelivery (other cases test that):
    // a lease outlives a slow read and ack on a loaded machine.
    let settings = GroupSettings {
        ack_timeout_ms: SHARE_ACK_TIMEOUT_MS,
        ..orders(strategy)
    };
    groups.put_group(&g, settings).await.unwrap();
    let log = consume(Arc::clone(&groups), g.clone(), 4, total).await;
    assert_eq!(log.len(), total, "{strategy:?}: every event delivered once");
    let distinct: BTreeSet<Position> = log.iter().map(|l| l.3).collect();
    assert_eq!(distinct.len(), total, "{strategy:?}: no event twice");
    let all: BTreeSet<Position> = order_positions(&store).await.into_iter().collect();
    assert_eq!(distinct, all, "{strategy:?}: exactly the source's events");
    let last = *all.last().unwrap();
    let s = status_until(&*groups, &g, "checkpoint passes the last", |s| {
        s.checkpoint >= last
    })
    .await;
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.acked_total, total as u64);
    assert_eq!(s.parked, 0);
    log
}

/// Round robin: 4 consumers share 1,000 events (or
/// [`GROUP_TEST_EVENTS_ENV`]), each acked exactly once.
pub async fn round_robin_shares_every_event_once<H: GroupsHarness>(h: &H) {
    let log = share(h, Strategy::RoundRobin).await;
    let busy: BTreeSet<usize> = log.iter().map(|l| l.0).collect();
    assert!(busy.len() > 1, "the work is shared: {busy:?}");
}

/// Pinned: the same, and each stream's events arrive in version order (one
/// in flight per stream at a time, across consumers).
pub async fn pinned_shares_every_event_once_in_stream_order<H: GroupsHarness>(h: &H) {
    let log = share(h, Strategy::Pinned).await;
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, s, v, _) in &log {
        let prev = last.insert(s.as_str(), *v).unwrap_or(0);
        assert_eq!(*v, prev + 1, "{s} arrived {v} after {prev}");
    }
}

/// A consumer that stops acking loses its leases to the others within
/// `ack_timeout_ms` plus a margin; its late acks settle nothing.
pub async fn silent_consumer_leases_reach_others<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 2, 5).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = orders(Strategy::RoundRobin);
    let timeout = Duration::from_millis(settings.ack_timeout_ms);
    groups.put_group(&g, settings).await.unwrap();
    let (dead, alive) = (consumer("dead"), consumer("alive"));
    let held = read_n(&groups, &g, &dead, 4).await;
    assert_eq!(held.len(), 4);
    let leased_at = Instant::now();
    let rest = read_n(&groups, &g, &alive, 6).await;
    assert_eq!(rest.len(), 6);
    groups.ack(&g, &alive, &ids(&rest)).await.unwrap();
    let again = read_n(&groups, &g, &alive, 4).await;
    let waited = leased_at.elapsed();
    assert_eq!(again.len(), 4, "the silent consumer's events come back");
    assert!(again.iter().all(|d| d.delivery_count == 2), "{again:?}");
    let held_at: BTreeSet<Position> = held.iter().map(|d| d.event.position).collect();
    let back: BTreeSet<Position> = again.iter().map(|d| d.event.position).collect();
    assert_eq!(held_at, back);
    assert!(
        waited < timeout + REDELIVERY_MARGIN,
        "within the ack timeout plus margin: {waited:?}"
    );
    let r = groups.ack(&g, &dead, &ids(&held)).await.unwrap();
    assert_eq!((r.settled, r.unknown), (0, 4), "its old leases are gone");
    let r = groups.ack(&g, &alive, &ids(&again)).await.unwrap();
    assert_eq!(r.settled, 4);
}

/// `leave` hands a consumer's leases back at once, long before the timeout.
pub async fn leave_hands_leases_back_at_once<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 3, 2).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = GroupSettings {
        ack_timeout_ms: 60_000,
        ..orders(Strategy::RoundRobin)
    };
    groups.put_group(&g, settings).await.unwrap();
    let (a, b) = (consumer("a"), consumer("b"));
    let held = read_n(&groups, &g, &a, 6).await;
    assert_eq!(held.len(), 6);
    assert!(groups
        .read(&g, &b, 10, Duration::ZERO)
        .await
        .unwrap()
        .is_empty());
    groups.leave(&g, &a).await.unwrap();
    let began = Instant::now();
    let got = read_n(&groups, &g, &b, 6).await;
    assert_eq!(got.len(), 6);
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(got.iter().all(|d| d.delivery_count == 2));
    let r = groups.ack(&g, &a, &ids(&held)).await.unwrap();
    assert_eq!(r.settled, 0, "a left: its ids settle nothing");
    assert_eq!(groups.ack(&g, &b, &ids(&got)).await.unwrap().settled, 6);
}

/// Single: one consumer receives everything; another takes over when it
/// leaves or goes silent.
pub async fn single_strategy_fails_over<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 2, 3).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = orders(Strategy::Single);
    let timeout = Duration::from_millis(settings.ack_timeout_ms);
    groups.put_group(&g, settings).await.unwrap();
    let (a, b, c) = (consumer("a"), consumer("b"), consumer("c"));
    let first = read_n(&groups, &g, &a, 2).await;
    assert_eq!(first.len(), 2);
    assert!(
        groups
            .read(&g, &b, 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty(),
        "b waits while a is active"
    );
    groups.ack(&g, &a, &ids(&first)).await.unwrap();
    groups.leave(&g, &a).await.unwrap();
    let second = read_n(&groups, &g, &b, 2).await;
    assert_eq!(second.len(), 2, "b takes over when a leaves");
    assert!(second.iter().all(|d| d.delivery_count == 1));
    groups.ack(&g, &b, &ids(&second)).await.unwrap();
    let held = read_n(&groups, &g, &b, 1).await;
    assert_eq!(held.len(), 1);
    // b goes silent: c takes over after the timeout.
    let began = Instant::now();
    let rest = read_n(&groups, &g, &c, 2).await;
    assert_eq!(rest.len(), 2, "c takes over from a silent b");
    assert!(began.elapsed() < timeout + REDELIVERY_MARGIN);
    assert_eq!(rest[0].event.position, held[0].event.position);
    assert_eq!(rest[0].delivery_count, 2);
    assert_eq!(groups.ack(&g, &c, &ids(&rest)).await.unwrap().settled, 2);
}

/// A retried event is parked after `max_retries`; the rest keep flowing;
/// replay delivers it again; acking it removes it from the parked list.
pub async fn retry_then_park_then_replay<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 3).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = orders(Strategy::RoundRobin);
    let max_deliveries = settings.max_retries + 1;
    groups.put_group(&g, settings).await.unwrap();
    let c = consumer("c");
    let mut handled = Vec::new();
    let mut attempts = 0;
    let mut parked_reports = 0;
    let began = Instant::now();
    while handled.len() < 2 || attempts < max_deliveries {
        assert!(
            began.elapsed() < READ_PATIENCE * 2,
            "{handled:?} {attempts}"
        );
        for d in groups
            .read(&g, &c, 10, Duration::from_millis(200))
            .await
            .unwrap()
        {
            if d.event.version == 2 {
                attempts += 1;
                assert_eq!(d.delivery_count, attempts);
                let r = groups
                    .nack(&g, &c, &[d.delivery_id], NackAction::Retry, "poison")
                    .await
                    .unwrap();
                assert_eq!(r.settled, 1);
                parked_reports += r.parked;
            } else {
                handled.push(d.event.version);
                groups.ack(&g, &c, &[d.delivery_id]).await.unwrap();
            }
        }
    }
    assert_eq!(parked_reports, 1, "the last retry parks");
    assert!(
        groups
            .read(&g, &c, 10, Duration::from_millis(200))
            .await
            .unwrap()
            .is_empty(),
        "a parked event is not delivered"
    );
    let parked = groups.parked(&g, 10).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event.version, 2);
    assert_eq!(parked[0].delivery_count, max_deliveries);
    assert_eq!(parked[0].reason, "poison");
    let last = *order_positions(&store).await.last().unwrap();
    let s = status_until(&groups, &g, "checkpoint passes parked", |s| {
        s.checkpoint >= last
    })
    .await;
    assert_eq!(s.parked, 1);
    assert_eq!(groups.replay_parked(&g, 10).await.unwrap(), 1);
    let again = read_n(&groups, &g, &c, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].event.version, 2);
    groups.ack(&g, &c, &ids(&again)).await.unwrap();
    assert!(groups.parked(&g, 10).await.unwrap().is_empty());
    status_until(&groups, &g, "parked count drops", |s| s.parked == 0).await;
}

/// `delete_parked` removes named positions from the list and counts them.
pub async fn delete_parked_removes_from_the_list<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 3).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let c = consumer("c");
    let got = read_n(&groups, &g, &c, 3).await;
    assert_eq!(got.len(), 3);
    let r = groups
        .nack(&g, &c, &ids(&got[..2]), NackAction::Park, "bad")
        .await
        .unwrap();
    assert_eq!(r.settled, 2);
    groups.ack(&g, &c, &ids(&got[2..])).await.unwrap();
    let parked = groups.parked(&g, 10).await.unwrap();
    let positions: Vec<Position> = parked.iter().map(|p| p.event.position).collect();
    assert_eq!(
        positions,
        vec![got[0].event.position, got[1].event.position]
    );
    assert_eq!(parked[0].reason, "bad");
    assert_eq!(groups.parked(&g, 1).await.unwrap().len(), 1, "limit holds");
    let missing = got[2].event.position;
    let n = groups
        .delete_parked(&g, &[positions[0], missing])
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(groups.delete_parked(&g, &[positions[0]]).await.unwrap(), 0);
    let left = groups.parked(&g, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event.position, positions[1]);
    status_until(&groups, &g, "one parked", |s| s.parked == 1).await;
    assert_eq!(groups.replay_parked(&g, 10).await.unwrap(), 1);
    let again = read_n(&groups, &g, &c, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].event.position, positions[1],
        "the deleted one stays gone"
    );
    groups.ack(&g, &c, &ids(&again)).await.unwrap();
    assert!(groups
        .read(&g, &c, 10, Duration::from_millis(150))
        .await
        .unwrap()
        .is_empty());
}

/// A skip settles without handling and without parking.
pub async fn skip_settles_without_parking<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 2).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let c = consumer("c");
    let got = read_n(&groups, &g, &c, 2).await;
    let r = groups
        .nack(&g, &c, &ids(&got), NackAction::Skip, "not mine")
        .await
        .unwrap();
    assert_eq!((r.settled, r.parked, r.unknown), (2, 0, 0));
    assert!(groups.parked(&g, 10).await.unwrap().is_empty());
    assert!(groups
        .read(&g, &c, 10, Duration::from_millis(150))
        .await
        .unwrap()
        .is_empty());
    let last = got[1].event.position;
    status_until(&groups, &g, "skips move the checkpoint", |s| {
        s.checkpoint >= last
    })
    .await;
}

/// After the groups (and the store, where the harness can reopen it) are
/// dropped and opened again, only events never acked are delivered.
pub async fn restart_delivers_only_unacked_events<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 10, 30).await;
    let g = name("g");
    let mut acked: BTreeSet<Position> = BTreeSet::new();
    {
        let groups = h.groups(&store).await;
        groups
            .put_group(&g, orders(Strategy::RoundRobin))
            .await
            .unwrap();
        let c = consumer("c");
        for i in 0..120 {
            let got = read_n(&groups, &g, &c, 2).await;
            assert_eq!(got.len(), 2);
            groups.ack(&g, &c, &[got[1].delivery_id]).await.unwrap();
            acked.insert(got[1].event.position);
            if i % 25 != 0 {
                groups.ack(&g, &c, &[got[0].delivery_id]).await.unwrap();
                acked.insert(got[0].event.position);
            } else {
                groups.leave(&g, &c).await.unwrap();
            }
        }
        // Some leased, never settled, when the process goes.
        assert_eq!(read_n(&groups, &g, &c, 5).await.len(), 5);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let store = h.reopen_store(store).await;
    let groups = h.groups(&store).await;
    let again = drain(&groups, &g, &consumer("again"), Duration::from_millis(700)).await;
    let twice: Vec<&Position> = again.iter().filter(|p| acked.contains(p)).collect();
    assert!(twice.is_empty(), "acked events delivered again: {twice:?}");
    let all: BTreeSet<Position> = acked.iter().chain(again.iter()).copied().collect();
    assert_eq!(
        all.len(),
        acked.len() + again.len(),
        "nothing delivered twice after"
    );
    let source: BTreeSet<Position> = order_positions(&store).await.into_iter().collect();
    assert_eq!(all, source, "no event lost");
}

/// Definitions survive a restart, are validated, can be updated (keeping
/// the checkpoint) and deleted.
pub async fn definitions_are_durable_validated_updatable_deletable<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 4).await;
    let g = name("g");
    {
        let groups = h.groups(&store).await;
        let bad = GroupSettings {
            max_in_flight: 0,
            ..orders(Strategy::Pinned)
        };
        let e = groups.put_group(&g, bad).await.unwrap_err();
        assert_eq!(e.kind(), "invalid_input");
        assert!(
            groups.group_status(&g).await.unwrap().is_none(),
            "nothing made"
        );
        let created = groups
            .put_group(&g, orders(Strategy::Pinned))
            .await
            .unwrap();
        assert_eq!(created.name, g);
        assert_eq!(created.settings, orders(Strategy::Pinned));
        let c = consumer("c");
        for _ in 0..2 {
            let got = read_n(&groups, &g, &c, 1).await;
            assert_eq!(got.len(), 1);
            assert_eq!(groups.ack(&g, &c, &ids(&got)).await.unwrap().settled, 1);
        }
        let update = GroupSettings {
            max_retries: 7,
            ..orders(Strategy::Pinned)
        };
        let updated = groups.put_group(&g, update).await.unwrap();
        assert_eq!(updated.settings.max_retries, 7);
        groups.leave(&g, &c).await.unwrap();
    }
    let store = h.reopen_store(store).await;
    let groups = h.groups(&store).await;
    let listed = groups.list_groups().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, g);
    assert_eq!(listed[0].settings.max_retries, 7);
    let positions = order_positions(&store).await;
    let rest = drain(&groups, &g, &consumer("d"), Duration::from_millis(300)).await;
    assert_eq!(rest, positions[2..].to_vec(), "the update kept the acks");
    let last = positions[3];
    status_until(&groups, &g, "checkpoint at the end", |s| {
        s.checkpoint >= last
    })
    .await;
    let other = name("h");
    groups
        .put_group(&other, orders(Strategy::Single))
        .await
        .unwrap();
    let names: Vec<String> = groups
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, vec!["g", "h"], "listed by name");
    assert!(groups.delete_group(&g).await.unwrap());
    assert!(!groups.delete_group(&g).await.unwrap());
    drop(groups);
    let store = h.reopen_store(store).await;
    let groups = h.groups(&store).await;
    let listed = groups.list_groups().await.unwrap();
    assert_eq!(listed.len(), 1, "the deletion is durable");
    assert_eq!(listed[0].name, other);
    // A group made again under a deleted name starts afresh.
    groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let fresh = drain(&groups, &g, &consumer("e"), Duration::from_millis(300)).await;
    assert_eq!(fresh, positions);
}

/// An update may not change the source.
pub async fn source_change_is_refused<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    let groups = h.groups(&store).await;
    let g = name("g");
    groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let other = GroupSettings::new(GroupSource::Stream(stream("order-1")));
    assert_eq!(
        groups.put_group(&g, other).await.unwrap_err().kind(),
        "invalid_input"
    );
    let other = GroupSettings::new(GroupSource::All(ReadFilter::all().category("invoice")));
    assert_eq!(
        groups.put_group(&g, other).await.unwrap_err().kind(),
        "invalid_input"
    );
    let s = groups.group_status(&g).await.unwrap().unwrap();
    assert_eq!(s.settings, orders(Strategy::RoundRobin), "unchanged");
}

/// Every call on a missing group fails with `group_not_found`.
pub async fn missing_group_is_group_not_found<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    let groups = h.groups(&store).await;
    let (g, c) = (name("nope"), consumer("c"));
    let kind = |r: strata_core::Error| r.kind();
    assert_eq!(
        kind(groups.read(&g, &c, 1, Duration::ZERO).await.unwrap_err()),
        "group_not_found"
    );
    assert_eq!(
        kind(groups.ack(&g, &c, &[1]).await.unwrap_err()),
        "group_not_found"
    );
    let nack = groups.nack(&g, &c, &[1], NackAction::Retry, "x").await;
    assert_eq!(kind(nack.unwrap_err()), "group_not_found");
    assert_eq!(
        kind(groups.leave(&g, &c).await.unwrap_err()),
        "group_not_found"
    );
    assert_eq!(
        kind(groups.parked(&g, 1).await.unwrap_err()),
        "group_not_found"
    );
    assert_eq!(
        kind(groups.replay_parked(&g, 1).await.unwrap_err()),
        "group_not_found"
    );
    let del = groups.delete_parked(&g, &[Position::START]).await;
    assert_eq!(kind(del.unwrap_err()), "group_not_found");
    assert!(groups.group_status(&g).await.unwrap().is_none());
    assert!(!groups.delete_group(&g).await.unwrap());
    assert!(groups.list_groups().await.unwrap().is_empty());
}

/// A group on all of `$all` delivers user events only: never the group's
/// own records nor any other system stream.
pub async fn system_events_are_never_delivered<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let everything = GroupSettings {
        ack_timeout_ms: 300,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    };
    groups.put_group(&g, everything).await.unwrap();
    groups
        .put_group(&name("other"), orders(Strategy::Single))
        .await
        .unwrap();
    fill(&store, 2, 2).await;
    let c = consumer("c");
    let mut seen = Vec::new();
    for _ in 0..3 {
        let got = groups
            .read(&g, &c, 100, Duration::from_millis(200))
            .await
            .unwrap();
        seen.extend(got.iter().map(|d| d.event.stream_id.to_string()));
        groups.ack(&g, &c, &ids(&got)).await.unwrap();
        let p = groups.read(&g, &c, 1, Duration::ZERO).await.unwrap();
        groups
            .nack(&g, &c, &ids(&p), NackAction::Park, "x")
            .await
            .unwrap();
        seen.extend(p.iter().map(|d| d.event.stream_id.to_string()));
    }
    assert!(seen.iter().all(|s| !s.starts_with('$')), "{seen:?}");
    assert_eq!(seen.len(), 4, "exactly the user events: {seen:?}");
}

/// `End` starts after the head when the group is made.
pub async fn start_end_delivers_only_new_events<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 2).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = GroupSettings {
        start: GroupStart::End,
        ..orders(Strategy::RoundRobin)
    };
    groups.put_group(&g, settings).await.unwrap();
    let c = consumer("c");
    assert!(groups
        .read(&g, &c, 10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    fill(&store, 1, 1).await;
    let got = read_n(&groups, &g, &c, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.version, 3);
    groups.ack(&g, &c, &ids(&got)).await.unwrap();
    assert!(groups
        .read(&g, &c, 10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
}

/// `AfterPosition(p)` delivers events after `p` only.
pub async fn start_after_position_is_exclusive<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 2, 3).await;
    let positions = order_positions(&store).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = GroupSettings {
        start: GroupStart::AfterPosition(positions[2]),
        ..orders(Strategy::RoundRobin)
    };
    groups.put_group(&g, settings).await.unwrap();
    let got = drain(&groups, &g, &consumer("c"), Duration::from_millis(200)).await;
    assert_eq!(got, positions[3..].to_vec());
}

/// `FromVersion(v)` on a stream source starts at version `v`, inclusive,
/// and a stream source delivers that stream only.
pub async fn start_from_version_on_a_stream_source<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 2, 5).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = GroupSettings {
        start: GroupStart::FromVersion(3),
        ack_timeout_ms: 300,
        ..GroupSettings::new(GroupSource::Stream(stream("order-1")))
    };
    groups.put_group(&g, settings).await.unwrap();
    let c = consumer("c");
    let mut versions = Vec::new();
    loop {
        let got = groups
            .read(&g, &c, 10, Duration::from_millis(200))
            .await
            .unwrap();
        if got.is_empty() {
            break;
        }
        for d in &got {
            assert_eq!(d.event.stream_id.as_str(), "order-1");
            versions.push(d.event.version);
        }
        groups.ack(&g, &c, &ids(&got)).await.unwrap();
    }
    assert_eq!(versions, vec![3, 4, 5]);
    let e = NewEvent::json("Placed", &json!({})).unwrap();
    store
        .append(&stream("order-1"), ExpectedVersion::Any, vec![e])
        .await
        .unwrap();
    let live = read_n(&groups, &g, &c, 1).await;
    assert_eq!(live.len(), 1, "new events of the stream come live");
    assert_eq!(live[0].event.version, 6);
}

/// Status: checkpoint, in flight, parked, consumers and acked total.
pub async fn status_reports_checkpoint_in_flight_parked_consumers_acked<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 6).await;
    let positions = order_positions(&store).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let s = groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    assert_eq!(s.name, g);
    assert_eq!((s.in_flight, s.parked, s.acked_total), (0, 0, 0));
    assert!(s.checkpoint < positions[0]);
    let (a, b) = (consumer("a"), consumer("b"));
    let got_a = read_n(&groups, &g, &a, 2).await;
    let got_b = read_n(&groups, &g, &b, 2).await;
    assert_eq!(got_a.len() + got_b.len(), 4);
    let s = groups.group_status(&g).await.unwrap().unwrap();
    assert_eq!(s.in_flight, 4);
    assert_eq!(s.consumers, 2);
    assert!(s.lag_events >= 4, "{s:?}");
    groups.ack(&g, &a, &ids(&got_a)).await.unwrap();
    groups
        .nack(&g, &b, &ids(&got_b[..1]), NackAction::Park, "p")
        .await
        .unwrap();
    let s = status_until(&groups, &g, "a's acks count", |s| {
        s.checkpoint >= positions[1]
    })
    .await;
    assert_eq!(s.acked_total, 2);
    assert_eq!(s.in_flight, 1);
    assert_eq!(s.parked, 1);
    assert!(
        s.checkpoint < positions[3],
        "b still holds position 4: {s:?}"
    );
    groups.ack(&g, &b, &ids(&got_b[1..])).await.unwrap();
    groups.leave(&g, &a).await.unwrap();
    let s = status_until(&groups, &g, "settled", |s| s.checkpoint >= positions[3]).await;
    assert_eq!((s.acked_total, s.in_flight, s.parked), (3, 0, 1));
    assert!(s.consumers <= 1, "a left: {s:?}");
    let rest = drain(&groups, &g, &b, Duration::from_millis(200)).await;
    assert_eq!(rest, positions[4..].to_vec());
    let s = status_until(&groups, &g, "all", |s| s.checkpoint >= positions[5]).await;
    assert_eq!(s.lag_events, 0);
    assert_eq!(s.acked_total, 5);
}

/// No consumer holds more than `max_in_flight` messages.
pub async fn max_in_flight_bounds_each_consumer<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 4, 5).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    let settings = GroupSettings {
        max_in_flight: 3,
        ack_timeout_ms: 60_000,
        ..orders(Strategy::RoundRobin)
    };
    groups.put_group(&g, settings).await.unwrap();
    let (a, b) = (consumer("a"), consumer("b"));
    let got = groups
        .read(&g, &a, 100, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(!got.is_empty() && got.len() <= 3, "{}", got.len());
    let more = read_n(&groups, &g, &a, 3).await;
    assert!(
        got.len() + more.len() <= 3,
        "a holds at most 3: {} + {}",
        got.len(),
        more.len()
    );
    let other = read_n(&groups, &g, &b, 3).await;
    assert_eq!(other.len(), 3, "b has its own room");
    groups.ack(&g, &a, &ids(&got)).await.unwrap();
    assert!(
        !read_n(&groups, &g, &a, 1).await.is_empty(),
        "room again after acks"
    );
}

/// Acking ids of another consumer or unknown ids settles nothing; a nack of
/// an unknown id too.
pub async fn settling_foreign_or_unknown_ids_does_nothing<H: GroupsHarness>(h: &H) {
    let store = h.open_store().await;
    fill(&store, 1, 2).await;
    let groups = h.groups(&store).await;
    let g = name("g");
    groups
        .put_group(&g, orders(Strategy::RoundRobin))
        .await
        .unwrap();
    let (a, b) = (consumer("a"), consumer("b"));
    let got = read_n(&groups, &g, &a, 2).await;
    let r = groups.ack(&g, &b, &ids(&got)).await.unwrap();
    assert_eq!((r.settled, r.unknown), (0, 2));
    let r = groups
        .nack(&g, &b, &ids(&got), NackAction::Park, "x")
        .await
        .unwrap();
    assert_eq!((r.settled, r.unknown), (0, 2));
    let bogus = got.iter().map(|d| d.delivery_id).max().unwrap() + 1_000;
    let r = groups.ack(&g, &a, &[bogus]).await.unwrap();
    assert_eq!((r.settled, r.unknown), (0, 1));
    assert!(groups.parked(&g, 10).await.unwrap().is_empty());
    let r = groups.ack(&g, &a, &ids(&got)).await.unwrap();
    assert_eq!((r.settled, r.unknown), (2, 0));
    let r = groups.ack(&g, &a, &ids(&got)).await.unwrap();
    assert_eq!(
        (r.settled, r.unknown),
        (0, 2),
        "twice: the second settles nothing"
    );
}
