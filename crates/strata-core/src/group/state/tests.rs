use super::*;
use crate::event::{ContentType, EventId, Metadata};
use crate::filter::ReadFilter;
use crate::group::{GroupSource, GroupStart};

fn event(stream: &str, version: u64, position: u64) -> RecordedEvent {
    let stream_id = if stream.starts_with('$') {
        StreamId::system(stream).unwrap()
    } else {
        StreamId::new(stream).unwrap()
    };
    RecordedEvent {
        id: EventId::new(),
        stream_id,
        version,
        position: Position(position),
        event_type: "Happened".into(),
        data: bytes::Bytes::from_static(b"{}"),
        content_type: ContentType::Json,
        metadata: Metadata::default(),
        recorded_at: chrono::Utc::now(),
        tags: Vec::new(),
    }
}

fn settings(strategy: Strategy) -> GroupSettings {
    GroupSettings {
        strategy,
        max_in_flight: 3,
        ack_timeout_ms: 1_000,
        max_retries: 2,
        retry_backoff_ms: 100,
        ..GroupSettings::new(GroupSource::All(ReadFilter::all()))
    }
}

fn consumer(name: &str) -> ConsumerId {
    ConsumerId::new(name).unwrap()
}

fn positions(d: &[Delivery]) -> Vec<u64> {
    d.iter().map(|d| d.event.position.0).collect()
}

fn ids(d: &[Delivery]) -> Vec<DeliveryId> {
    d.iter().map(|d| d.delivery_id).collect()
}

/// Ten events over streams a and b at positions 10, 20, ... 100.
fn filled(strategy: Strategy) -> GroupState {
    let mut g = GroupState::new(settings(strategy), Progress::default());
    for i in 1..=10u64 {
        let stream = if i % 2 == 1 { "a" } else { "b" };
        g.push(event(stream, i.div_ceil(2), i * 10));
    }
    g
}

#[test]
fn round_robin_leases_each_event_once_within_max_in_flight() {
    let now = Instant::now();
    let mut g = filled(Strategy::RoundRobin);
    let (x, y) = (consumer("x"), consumer("y"));
    let got_x = g.lease(&x, 100, now);
    let got_y = g.lease(&y, 100, now);
    assert_eq!(positions(&got_x), vec![10, 20, 30]);
    assert_eq!(positions(&got_y), vec![40, 50, 60]);
    assert!(g.lease(&x, 100, now).is_empty(), "x is at max_in_flight");
    assert_eq!(g.in_flight(), 6);
    // Acking out of order moves the checkpoint only past settled events.
    let (r, rec) = g.ack(&x, &ids(&got_x)[1..], now);
    assert_eq!((r.settled, r.unknown), (2, 0));
    assert_eq!(rec, vec![Record::Settled(vec![Position(20), Position(30)])]);
    assert_eq!(g.checkpoint().0, 9);
    let (r, _) = g.ack(&y, &ids(&got_x)[..1], now);
    assert_eq!((r.settled, r.unknown), (0, 1), "y does not hold x's lease");
    g.ack(&x, &ids(&got_x)[..1], now);
    assert_eq!(g.checkpoint().0, 39);
    assert_eq!(positions(&g.lease(&x, 100, now)), vec![70, 80, 90]);
}

#[test]
fn an_expired_lease_goes_to_another_consumer_with_its_count() {
    let now = Instant::now();
    let mut g = filled(Strategy::RoundRobin);
    let (x, y) = (consumer("x"), consumer("y"));
    let first = g.lease(&x, 1, now);
    assert_eq!(first[0].delivery_count, 1);
    let later = now + Duration::from_millis(1_001);
    let again = g.lease(&y, 1, later);
    assert_eq!(positions(&again), vec![10]);
    assert_eq!(again[0].delivery_count, 2);
    let (r, _) = g.ack(&x, &ids(&first), later);
    assert_eq!(r.unknown, 1, "the expired lease cannot be acked");
    let (r, _) = g.ack(&y, &ids(&again), later);
    assert_eq!(r.settled, 1);
}

#[test]
fn retries_back_off_then_park() {
    let now = Instant::now();
    let mut g = filled(Strategy::RoundRobin);
    let x = consumer("x");
    let mut t = now;
    for count in 1..=3u32 {
        let d = g.lease(&x, 1, t);
        assert_eq!(
            (d[0].event.position, d[0].delivery_count),
            (Position(10), count)
        );
        let (r, rec) = g.nack(&x, &ids(&d), NackAction::Retry, "boom", t);
        if count <= 2 {
            assert_eq!((r.settled, r.parked), (1, 0));
            assert!(rec.is_empty());
            // Not offered again before the back-off: the next event comes.
            let other = g.lease(&x, 1, t);
            assert_eq!(positions(&other), vec![10 + 10 * u64::from(count)]);
            g.ack(&x, &ids(&other), t);
            t += Duration::from_millis(settings(Strategy::RoundRobin).backoff_ms(count));
        } else {
            assert_eq!(r.parked, 1);
            assert!(
                matches!(&rec[0], Record::Parked { delivery_count: 3, reason, .. } if reason == "boom")
            );
            assert_eq!(rec[1], Record::Settled(vec![Position(10)]));
        }
    }
    assert_eq!(g.checkpoint().0, 39, "10 parked, 20 and 30 acked");
}

#[test]
fn pinned_keeps_one_event_per_stream_in_flight_and_streams_on_their_owner() {
    let now = Instant::now();
    let mut g = filled(Strategy::Pinned);
    // Two consumers that own one stream each.
    let x = consumer("x");
    let y = ["y", "z", "w", "v", "u", "t", "s", "r"]
        .into_iter()
        .map(consumer)
        .find(|y| {
            let live = [
                (x.clone(), name_hash("x")),
                (y.clone(), name_hash(y.as_str())),
            ];
            owner(name_hash("a"), &live) != owner(name_hash("b"), &live)
        })
        .unwrap();
    g.touch(&x, now);
    g.touch(&y, now);
    let got_x = g.lease(&x, 100, now);
    let got_y = g.lease(&y, 100, now);
    // Each consumer gets at most the first event of the streams it owns.
    let all: Vec<u64> = [positions(&got_x), positions(&got_y)].concat();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(sorted, vec![10, 20]);
    assert!(g.lease(&x, 100, now).is_empty());
    // The holder of stream a acks; a's next event goes to the same owner.
    let (holder, held) = if positions(&got_x).contains(&10) {
        (&x, &got_x)
    } else {
        (&y, &got_y)
    };
    let a_id = held
        .iter()
        .find(|d| d.event.position == Position(10))
        .unwrap()
        .delivery_id;
    g.ack(holder, &[a_id], now);
    assert_eq!(positions(&g.lease(holder, 100, now))[0], 30);
    // When the other leaves, the holder takes its streams too.
    let other = if holder == &x { &y } else { &x };
    g.leave(other);
    let took = g.lease(holder, 100, now);
    assert_eq!(positions(&took), vec![20]);
    assert_eq!(took[0].delivery_count, 2);
}

#[test]
fn single_delivers_to_one_consumer_until_it_leaves() {
    let now = Instant::now();
    let mut g = filled(Strategy::Single);
    let (x, y) = (consumer("x"), consumer("y"));
    assert_eq!(g.lease(&x, 1, now).len(), 1);
    assert!(g.lease(&y, 1, now).is_empty());
    g.leave(&x);
    assert_eq!(positions(&g.lease(&y, 5, now)), vec![10, 20, 30]);
    // A silent active consumer is replaced after the ack timeout.
    let later = now + Duration::from_millis(1_500);
    assert_eq!(positions(&g.lease(&x, 1, later)), vec![10]);
}

#[test]
fn progress_resumes_with_only_unsettled_events() {
    let now = Instant::now();
    let mut g = filled(Strategy::RoundRobin);
    let x = consumer("x");
    let d = g.lease(&x, 3, now);
    g.ack(&x, &[d[0].delivery_id, d[2].delivery_id], now);
    let progress = g.progress();
    assert_eq!(progress.checkpoint, Position(19));
    assert_eq!(progress.cursor, Position(100));
    assert!(!progress.unsettled.contains(&Position(30)));
    assert!(progress.unsettled.contains(&Position(20)));
    let mut h = GroupState::new(settings(Strategy::RoundRobin), progress.clone());
    assert_eq!(
        h.cursor().0,
        19,
        "the source is read again after the checkpoint"
    );
    for i in 2..=10u64 {
        h.push(event("a", i, i * 10));
    }
    assert_eq!(h.held(), 8, "30 is not delivered again");
    assert_eq!(h.checkpoint().0, 19);
    // A durable settle record folds the same way.
    let mut p = progress;
    p.settle(&[Position(20), Position(110)]);
    assert_eq!(p.checkpoint, Position(39));
    assert!(p.settled_ahead.contains(&Position(110)));
}

#[test]
fn system_streams_and_filtered_events_only_move_the_cursor() {
    let mut g = GroupState::new(
        GroupSettings {
            source: GroupSource::All(ReadFilter::all().category("order")),
            ..settings(Strategy::RoundRobin)
        },
        Progress::default(),
    );
    g.push(event("$groups", 1, 5));
    g.push(event("user-1", 1, 6));
    g.push(event("order-1", 1, 7));
    assert_eq!((g.held(), g.cursor().0), (1, 7));
    assert_eq!(g.checkpoint().0, 6);
    let mut s = GroupState::new(
        GroupSettings {
            source: GroupSource::Stream(StreamId::new("order-1").unwrap()),
            start: GroupStart::FromVersion(2),
            ..settings(Strategy::RoundRobin)
        },
        Progress::default(),
    );
    s.push(event("order-1", 1, 1));
    s.push(event("order-1", 2, 2));
    assert_eq!(s.held(), 1);
}

#[test]
fn replayed_parked_events_come_first_and_leave_the_list_when_acked() {
    let now = Instant::now();
    let mut g = filled(Strategy::RoundRobin);
    let x = consumer("x");
    g.replay(event("a", 1, 3));
    let d = g.lease(&x, 2, now);
    assert_eq!(positions(&d), vec![3, 10]);
    assert_eq!(d[0].delivery_count, 1);
    let (_, rec) = g.ack(&x, &ids(&d), now);
    assert_eq!(
        rec,
        vec![
            Record::Unparked(Position(3)),
            Record::Settled(vec![Position(10)])
        ]
    );
    assert_eq!(g.checkpoint().0, 19);
}

/// A small deterministic generator, so a failing sequence repeats.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Random pushes, leases, acks, nacks of every kind, replays, leaves,
/// strategy changes and the passing of time keep the ready, head and back-off indexes equal to
/// what the slots say, under every strategy.
#[test]
fn the_indexes_follow_every_transition() {
    for strategy in [Strategy::RoundRobin, Strategy::Pinned, Strategy::Single] {
        for seed in 0..20u64 {
            let mut rng = Lcg(seed);
            let mut g = GroupState::new(settings(strategy), Progress::default());
            let mut now = Instant::now();
            let mut next_position = 1u64;
            let mut versions = [0u64; 3];
            let mut held: Vec<(ConsumerId, Delivery)> = Vec::new();
            let names = ["a", "b", "c"];
            for _ in 0..400 {
                match rng.below(9) {
                    0 | 1 => {
                        let s = rng.below(3) as usize;
                        versions[s] += 1;
                        g.push(event(names[s], versions[s], next_position));
                        next_position += 1 + rng.below(2);
                    }
                    2 | 3 => {
                        let c = consumer(&format!("c{}", rng.below(3)));
                        let max = 1 + rng.below(4) as usize;
                        for d in g.lease(&c, max, now) {
                            held.push((c.clone(), d));
                        }
                    }
                    4 | 5 if !held.is_empty() => {
                        let (c, d) = held.swap_remove(rng.below(held.len() as u64) as usize);
                        let action = match rng.below(4) {
                            0 => None,
                            1 => Some(NackAction::Retry),
                            2 => Some(NackAction::Park),
                            _ => Some(NackAction::Skip),
                        };
                        let records = match action {
                            None => g.ack(&c, &[d.delivery_id], now).1,
                            Some(a) => g.nack(&c, &[d.delivery_id], a, "r", now).1,
                        };
                        for r in records {
                            if let Record::Parked { event, .. } = r {
                                if rng.below(2) == 0 {
                                    g.replay(*event);
                                }
                            }
                        }
                    }
                    6 => now += Duration::from_millis(rng.below(700)),
                    7 => g.leave(&consumer(&format!("c{}", rng.below(3)))),
                    _ => {
                        if let Some(&p) = g.replays.keys().next() {
                            g.forget_replay(p);
                        }
                        g.expire(now);
                        if rng.below(4) == 0 {
                            let s = [Strategy::RoundRobin, Strategy::Pinned, Strategy::Single];
                            g.set_settings(settings(s[rng.below(3) as usize]));
                        }
                    }
                }
                g.check_indexes();
            }
        }
    }
}
