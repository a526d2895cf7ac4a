//! Conformance cases for dynamic consistency boundaries: tags kept as sets,
//! reads by query, and conditional appends whose check and write are one
//! step, alone and combined with stream guards, under a 16-writer race.
//!
//! A backend runs them with [`dcb_conformance_suite!`](crate::dcb_conformance_suite):
//!
//! ```
//! strata_testkit::dcb_conformance_suite!(strata_testkit::conformance::MemoryHarness);
//! # fn main() {}
//! ```

// These functions are test assertions: a panic is how a case reports that
// the store broke the contract.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::json;
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag, MAX_TAGS_PER_EVENT};
use strata_core::{
    EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent, StreamAppend,
    StreamId,
};

use crate::conformance::{all_events, assert_kind, assert_wev, sid, StoreHarness};

/// Runs every DCB case against a harness, one `#[test]` per case.
#[macro_export]
macro_rules! dcb_conformance_suite {
    ($harness:expr $(,)?) => {
        $crate::__dcb_conformance_cases! {
            $harness;
            tags_are_kept_as_sets,
            too_many_tags_are_refused,
            read_query_matches_types_and_tags,
            read_query_starts_after_and_stops_at_limit,
            read_query_skips_system_streams,
            condition_fails_on_a_match_after_its_position,
            condition_without_after_counts_every_event,
            condition_ignores_matches_at_or_before_after,
            condition_and_stream_guards_both_apply,
            failed_condition_writes_nothing_anywhere,
            exact_retry_answers_without_checking_again,
            conditions_sent_together_decide_in_order,
            course_subscriptions_race_without_overbooking,
            disjoint_boundaries_never_conflict,
            erased_events_leave_reads_and_conditions,
        }
    };
}

/// Implementation detail of [`dcb_conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __dcb_conformance_cases {
    ($harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::__private::run_case(stringify!($case), async {
                    let harness = $harness;
                    $crate::dcb::$case(&harness).await;
                });
            }
        )*
    };
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn tagged(event_type: &str, tags: &[&str]) -> NewEvent {
    NewEvent::json(event_type, &json!({}))
        .unwrap()
        .with_tags(tags.iter().map(|t| tag(t)))
}

fn item(types: &[&str], tags: &[&str]) -> QueryItem {
    QueryItem::new(types.iter().copied(), tags.iter().map(|t| tag(t)))
}

fn query(items: Vec<QueryItem>) -> Query {
    Query::new(items).unwrap()
}

fn part(stream: &str, expected: ExpectedVersion, events: Vec<NewEvent>) -> StreamAppend {
    StreamAppend::new(sid(stream), expected, events)
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.0).collect()
}

async fn read<S: EventStore>(store: &S, q: &Query, after: u64) -> Vec<RecordedEvent> {
    store.read_query(q, Position(after), 1_000).await.unwrap()
}

/// Appends `events` to `stream` with no condition at all.
async fn put<S: EventStore>(store: &S, stream: &str, events: Vec<NewEvent>) {
    let cond = AppendCondition::new(Query::new(vec![item(&["Never"], &[])]).unwrap(), None);
    store
        .append_if(vec![part(stream, ExpectedVersion::Any, events)], &cond)
        .await
        .unwrap();
}

/// Tags come back sorted and each once, wherever the event is read.
pub async fn tags_are_kept_as_sets<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(&store, "s-1", vec![tagged("A", &["b:2", "a:1", "b:2"])]).await;
    let store = h.reopen(store).await;
    let all = all_events(&store).await;
    assert_eq!(all[0].tags, vec![tag("a:1"), tag("b:2")]);
    let by_stream = store
        .read_stream(&sid("s-1"), 1, 10, strata_core::Direction::Forward)
        .await
        .unwrap();
    assert_eq!(by_stream[0].tags, all[0].tags);
    let untagged = store
        .append(&sid("s-2"), ExpectedVersion::Any, vec![tagged("B", &[])])
        .await
        .unwrap();
    let e = store
        .read_all(untagged.first_position, 1, &ReadFilter::all())
        .await
        .unwrap();
    assert!(e[0].tags.is_empty());
}

/// More distinct tags than the limit are refused, and nothing is written.
pub async fn too_many_tags_are_refused<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let names: Vec<String> = (0..=MAX_TAGS_PER_EVENT).map(|i| format!("t:{i}")).collect();
    let e = NewEvent::json("A", &json!({}))
        .unwrap()
        .with_tags(names.iter().map(|t| tag(t)));
    let r = store
        .append(&sid("s-1"), ExpectedVersion::Any, vec![e])
        .await;
    assert_kind(r, "invalid_input");
    assert!(all_events(&store).await.is_empty());
}

/// An item needs one of its types (any, when it names none) and all of its
/// tags; a query matches any item; no items match everything.
pub async fn read_query_matches_types_and_tags<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(
        &store,
        "s-1",
        vec![
            tagged("Subscribed", &["course:c1", "student:s1"]), // 1
            tagged("Subscribed", &["course:c2", "student:s1"]), // 2
            tagged("Left", &["course:c1", "student:s1"]),       // 3
            tagged("Opened", &[]),                              // 4
        ],
    )
    .await;
    // The four events' positions, whatever numbering the store uses.
    let p = positions(&all_events(&store).await);
    let q = |items| async { positions(&read(&store, &query(items), 0).await) };
    assert_eq!(
        q(vec![item(&["Subscribed"], &["course:c1"])]).await,
        vec![p[0]]
    );
    assert_eq!(q(vec![item(&[], &["student:s1"])]).await, p[..3].to_vec());
    assert_eq!(
        q(vec![item(&["Subscribed", "Left"], &["course:c1"])]).await,
        vec![p[0], p[2]]
    );
    assert_eq!(
        q(vec![item(&[], &["course:c1", "course:c2"])]).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        q(vec![item(&["Opened"], &[]), item(&[], &["course:c2"])]).await,
        vec![p[1], p[3]]
    );
    assert_eq!(q(vec![]).await, p);
}

/// Reads start after the position given and stop at the limit; bad limits
/// are refused.
pub async fn read_query_starts_after_and_stops_at_limit<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let events = (0..10).map(|_| tagged("A", &["k:v"])).collect();
    put(&store, "s-1", events).await;
    let q = query(vec![item(&[], &["k:v"])]);
    let p = positions(&all_events(&store).await);
    assert_eq!(positions(&read(&store, &q, p[6]).await), p[7..].to_vec());
    let two = store.read_query(&q, Position(p[2]), 2).await.unwrap();
    assert_eq!(positions(&two), p[3..5].to_vec());
    assert!(read(&store, &q, p[9]).await.is_empty());
    assert_kind(store.read_query(&q, Position(0), 0).await, "invalid_input");
}

/// Events of system streams never match, not even the query that matches
/// everything.
pub async fn read_query_skips_system_streams<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let system = StreamId::system("$internal").unwrap();
    store
        .append(&system, ExpectedVersion::Any, vec![tagged("A", &[])])
        .await
        .unwrap();
    put(&store, "s-1", vec![tagged("A", &[])]).await;
    let user = store
        .read_stream(&sid("s-1"), 1, 1, strata_core::Direction::Forward)
        .await
        .unwrap();
    let everything = read(&store, &Query::all(), 0).await;
    assert_eq!(positions(&everything), positions(&user));
}

/// A matching event after the condition's position fails the append with
/// the first matching position, and nothing is written.
pub async fn condition_fails_on_a_match_after_its_position<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(
        &store,
        "s-1",
        vec![tagged("A", &["k:1"]), tagged("A", &["k:2"])],
    )
    .await;
    let p = positions(&all_events(&store).await);
    let cond = AppendCondition::new(query(vec![item(&["A"], &["k:2"])]), Some(Position(p[0])));
    let r = store
        .append_if(
            vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])],
            &cond,
        )
        .await;
    match r {
        Err(strata_core::Error::ConditionFailed { position }) => assert_eq!(position.0, p[1]),
        other => panic!("expected condition_failed, got {other:?}"),
    }
    assert_eq!(all_events(&store).await.len(), 2);
}

/// Without `after`, every recorded event counts.
pub async fn condition_without_after_counts_every_event<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let unique = AppendCondition::new(query(vec![item(&["Registered"], &["user:ada"])]), None);
    let register = || {
        vec![part(
            "users",
            ExpectedVersion::Any,
            vec![tagged("Registered", &["user:ada"])],
        )]
    };
    store.append_if(register(), &unique).await.unwrap();
    assert_kind(
        store.append_if(register(), &unique).await,
        "condition_failed",
    );
    let other = AppendCondition::new(query(vec![item(&["Registered"], &["user:bob"])]), None);
    let bob = vec![part(
        "users",
        ExpectedVersion::Any,
        vec![tagged("Registered", &["user:bob"])],
    )];
    store.append_if(bob, &other).await.unwrap();
    assert_eq!(all_events(&store).await.len(), 2);
}

/// Matches at or before `after` do not count; events that do not match do
/// not count wherever they are.
pub async fn condition_ignores_matches_at_or_before_after<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(
        &store,
        "s-1",
        vec![tagged("A", &["k:v"]), tagged("B", &["k:v"])],
    )
    .await;
    let p = positions(&all_events(&store).await);
    let cond = AppendCondition::new(query(vec![item(&["A"], &["k:v"])]), Some(Position(p[0])));
    let r = store
        .append_if(
            vec![part(
                "s-1",
                ExpectedVersion::Any,
                vec![tagged("A", &["k:v"])],
            )],
            &cond,
        )
        .await
        .unwrap();
    assert!(r[0].first_position.0 > p[1]);
    // Now the new event matches: the same condition fails.
    let again = vec![part(
        "s-1",
        ExpectedVersion::Any,
        vec![tagged("A", &["k:v"])],
    )];
    assert_kind(store.append_if(again, &cond).await, "condition_failed");
}

/// A condition that holds does not lift a failing stream guard, and a
/// guard that holds does not lift a failing condition.
pub async fn condition_and_stream_guards_both_apply<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(&store, "s-1", vec![tagged("A", &["k:v"])]).await;
    let holds = AppendCondition::new(query(vec![item(&["Z"], &[])]), None);
    let guarded = vec![part(
        "s-1",
        ExpectedVersion::NoStream,
        vec![tagged("B", &[])],
    )];
    assert_wev(
        store.append_if(guarded, &holds).await,
        &sid("s-1"),
        ExpectedVersion::NoStream,
        strata_core::CurrentVersion::Current(1),
    );
    let fails = AppendCondition::new(query(vec![item(&["A"], &[])]), None);
    let good_guard = vec![part(
        "s-1",
        ExpectedVersion::Exact(1),
        vec![tagged("B", &[])],
    )];
    assert_kind(
        store.append_if(good_guard, &fails).await,
        "condition_failed",
    );
    let both = vec![part(
        "s-1",
        ExpectedVersion::Exact(1),
        vec![tagged("B", &[])],
    )];
    let r = store.append_if(both, &holds).await.unwrap();
    assert_eq!(r[0].next_expected_version, 2);
}

/// A failed condition writes none of the parts of a multi-stream append.
pub async fn failed_condition_writes_nothing_anywhere<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(&store, "s-1", vec![tagged("A", &["k:v"])]).await;
    let cond = AppendCondition::new(query(vec![item(&[], &["k:v"])]), None);
    let parts = vec![
        part("s-2", ExpectedVersion::NoStream, vec![tagged("B", &[])]),
        part("s-3", ExpectedVersion::Any, vec![tagged("C", &["k:w"])]),
    ];
    assert_kind(store.append_if(parts, &cond).await, "condition_failed");
    assert_eq!(all_events(&store).await.len(), 1);
    assert!(store.stream_info(&sid("s-2")).await.unwrap().is_none());
}

/// Re-sending a conditional append whose events are recorded answers with
/// the original result, though its own events now match the condition.
pub async fn exact_retry_answers_without_checking_again<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    let e = tagged("Registered", &["user:ada"]).with_id(strata_core::EventId::new());
    let cond = AppendCondition::new(query(vec![item(&["Registered"], &["user:ada"])]), None);
    let parts = || vec![part("users", ExpectedVersion::Any, vec![e.clone()])];
    let first = store.append_if(parts(), &cond).await.unwrap();
    let again = store.append_if(parts(), &cond).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(all_events(&store).await.len(), 1);
}

/// Rounds of [`conditions_sent_together_decide_in_order`].
const TOGETHER_ROUNDS: usize = 8;

/// Two conditional appends sent at once on one boundary, both after the
/// same position: one is written, and the other fails naming the first
/// position of the winner's events that matches (which a store that
/// decides both in one batch knows before it commits). Sent at once on
/// disjoint boundaries, both are written.
pub async fn conditions_sent_together_decide_in_order<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(&store, "other-1", vec![tagged("Noise", &["seat:x"])]).await;
    for round in 0..TOGETHER_ROUNDS {
        let head = all_events(&store).await.last().map_or(0, |e| e.position.0);
        let seat = format!("seat:r{round}");
        let cond = AppendCondition::new(
            query(vec![item(&["Booked"], &[seat.as_str()])]),
            Some(Position(head)),
        );
        // Each books the seat in its second event; the first does not match.
        let booking = |who: &str| {
            vec![part(
                &format!("booking-{who}{round}"),
                ExpectedVersion::NoStream,
                vec![
                    tagged("Asked", &[seat.as_str()]),
                    tagged("Booked", &[seat.as_str()]),
                ],
            )]
        };
        let (a, b) = tokio::join!(
            store.append_if(booking("a"), &cond),
            store.append_if(booking("b"), &cond)
        );
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("round {round}: expected one booking and one conflict, got {other:?}"),
        };
        match lost {
            strata_core::Error::ConditionFailed { position } => {
                assert_eq!(position, won[0].last_position, "round {round}")
            }
            other => panic!("round {round}: expected condition_failed, got {other:?}"),
        }
        let booked = read(&store, &query(vec![item(&["Booked"], &[seat.as_str()])]), 0).await;
        assert_eq!(positions(&booked), vec![won[0].last_position.0]);

        // Disjoint boundaries, same position: both are written.
        let own = |who: &str| {
            let seat = format!("seat:r{round}{who}");
            let cond = AppendCondition::new(
                query(vec![item(&["Booked"], &[seat.as_str()])]),
                Some(Position(head)),
            );
            let append = vec![part(
                &format!("own-{who}{round}"),
                ExpectedVersion::NoStream,
                vec![tagged("Booked", &[seat.as_str()])],
            )];
            (append, cond)
        };
        let ((a, ca), (b, cb)) = (own("a"), own("b"));
        let (a, b) = tokio::join!(store.append_if(a, &ca), store.append_if(b, &cb));
        a.unwrap();
        b.unwrap();
    }
}

/// Course capacity and the per-student limit of the race.
const CAPACITY: usize = 3;
const STUDENT_LIMIT: usize = 2;
const COURSES: usize = 4;
const STUDENTS: usize = 8;
const WRITERS: usize = 16;
/// Decisions each writer attempts.
const ATTEMPTS: usize = 12;

/// One subscription decision: read both boundaries, decide, append with
/// the condition after the last position read. Ok(true) if it subscribed,
/// Ok(false) if the rules refused, Err(()) on a conflict.
async fn subscribe<S: EventStore>(store: &S, course: usize, student: usize) -> Result<bool, ()> {
    let (c, s) = (format!("course:c{course}"), format!("student:s{student}"));
    let q = query(vec![
        item(&["Subscribed"], &[&c]),
        item(&["Subscribed"], &[&s]),
    ]);
    let head = store.head_position().await.unwrap();
    let seen = store.read_query(&q, Position::START, 10_000).await.unwrap();
    let seen: Vec<&RecordedEvent> = seen.iter().filter(|e| e.position <= head).collect();
    let in_course = seen.iter().filter(|e| e.tags.contains(&tag(&c))).count();
    let of_student = seen.iter().filter(|e| e.tags.contains(&tag(&s))).count();
    let already = seen
        .iter()
        .any(|e| e.tags.contains(&tag(&c)) && e.tags.contains(&tag(&s)));
    if already || in_course >= CAPACITY || of_student >= STUDENT_LIMIT {
        return Ok(false);
    }
    let cond = AppendCondition::new(q, Some(head));
    let stream = format!("subscriptions-c{course}");
    let e = tagged("Subscribed", &[&c, &s]);
    match store
        .append_if(vec![part(&stream, ExpectedVersion::Any, vec![e])], &cond)
        .await
    {
        Ok(_) => Ok(true),
        Err(strata_core::Error::ConditionFailed { position }) => {
            // A real conflict: the first event after the read that matches
            // the decision's query is the one named.
            let first = store
                .read_query(&cond.fail_if_events_match, head, 1)
                .await
                .unwrap();
            assert_eq!(
                first[0].position, position,
                "a conflict names a matching event"
            );
            Err(())
        }
        Err(e) => panic!("subscribe failed: {e}"),
    }
}

/// 16 writers run the course-subscription decision at once on overlapping
/// courses and students: no course exceeds its capacity, no student the
/// limit, no pair is subscribed twice, and every conflict was real (the
/// event it names matches the decision's query).
pub async fn course_subscriptions_race_without_overbooking<H: StoreHarness>(h: &H) {
    let store = Arc::new(h.open().await);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut conflicts = 0;
                for i in 0..ATTEMPTS {
                    let (course, student) = attempt(w, i);
                    // Retry a conflicting decision: it reads again.
                    while subscribe(&*store, course, student).await.is_err() {
                        conflicts += 1;
                    }
                }
                conflicts
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = all_events(&*store).await;
    let mut per_course: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_student: BTreeMap<String, usize> = BTreeMap::new();
    let mut pairs = BTreeSet::new();
    for e in &all {
        let (c, s) = (e.tags[0].to_string(), e.tags[1].to_string());
        assert!(c.starts_with("course:") && s.starts_with("student:"));
        *per_course.entry(c.clone()).or_default() += 1;
        *per_student.entry(s.clone()).or_default() += 1;
        assert!(
            pairs.insert((c, s)),
            "a student subscribed twice to one course"
        );
    }
    assert!(
        per_course.values().all(|&n| n <= CAPACITY),
        "{per_course:?}"
    );
    assert!(
        per_student.values().all(|&n| n <= STUDENT_LIMIT),
        "{per_student:?}"
    );
    // No decision was lost to a conflict: every pair attempted is
    // subscribed, or its course or its student is full.
    for w in 0..WRITERS {
        for i in 0..ATTEMPTS {
            let (course, student) = attempt(w, i);
            let (c, s) = (format!("course:c{course}"), format!("student:s{student}"));
            let full = per_course.get(&c) == Some(&CAPACITY)
                || per_student.get(&s) == Some(&STUDENT_LIMIT);
            assert!(
                pairs.contains(&(c, s)) || full,
                "c{course}/s{student} turned away"
            );
        }
    }
}

/// The course and student writer `w` tries on its `i`th decision.
fn attempt(w: usize, i: usize) -> (usize, usize) {
    ((w + i) % COURSES, (w * 3 + i) % STUDENTS)
}

/// Writers on disjoint boundaries never conflict.
pub async fn disjoint_boundaries_never_conflict<H: StoreHarness>(h: &H) {
    let store = Arc::new(h.open().await);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mine = format!("user:u{w}");
                let q = query(vec![item(&["Renamed"], &[&mine])]);
                for _ in 0..10 {
                    let head = store.head_position().await.unwrap();
                    let cond = AppendCondition::new(q.clone(), Some(head));
                    let e = tagged("Renamed", &[&mine]);
                    let stream = format!("users-u{w}");
                    store
                        .append_if(vec![part(&stream, ExpectedVersion::Any, vec![e])], &cond)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(all_events(&*store).await.len(), WRITERS * 10);
}

/// Events of an erased stream leave query reads, and no longer fail a
/// condition (stores that cannot erase are skipped).
pub async fn erased_events_leave_reads_and_conditions<H: StoreHarness>(h: &H) {
    let store = h.open().await;
    put(
        &store,
        "person-1",
        vec![tagged("Registered", &["email:ada@example.com"])],
    )
    .await;
    put(
        &store,
        "person-2",
        vec![tagged("Registered", &["email:bob@example.com"])],
    )
    .await;
    let q = query(vec![item(&[], &["email:ada@example.com"])]);
    match store
        .erase_stream(&sid("person-1"), ExpectedVersion::Any)
        .await
    {
        Err(e) if e.kind() == "unsupported" => return,
        other => other.unwrap(),
    }
    assert!(read(&store, &q, 0).await.is_empty());
    let cond = AppendCondition::new(q, None);
    let again = vec![part(
        "person-3",
        ExpectedVersion::Any,
        vec![tagged("Registered", &["email:ada@example.com"])],
    )];
    let third = store.append_if(again, &cond).await.unwrap();
    let everyone = read(&store, &Query::all(), 0).await;
    assert_eq!(everyone.len(), 2);
    assert_eq!(everyone[0].stream_id.as_str(), "person-2");
    assert_eq!(everyone[1].position, third[0].first_position);
}
