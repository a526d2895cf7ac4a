//! The DCB conformance cases that assert positions, on the log store: the
//! same steps and checks as `strata_testkit::dcb`, with each position the
//! memory store numbers 1, 2, 3, ... taken as the position the log store
//! gave that event (its positions are segment offsets, not a count).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{
    EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent,
    StreamAppend, StreamId,
};
use strata_log::{Durability, LogConfig, LogStore};

struct Open {
    store: LogStore,
    _dir: tempfile::TempDir,
}

async fn open() -> Open {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(
        LogConfig::new(dir.path())
            .durability(Durability::Always)
            .max_segment_bytes(64 * 1024),
    )
    .await
    .unwrap();
    Open { store, _dir: dir }
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
    StreamAppend::new(StreamId::new(stream).unwrap(), expected, events)
}

fn positions(events: &[RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.position.0).collect()
}

async fn read(store: &LogStore, q: &Query, after: u64) -> Vec<RecordedEvent> {
    store.read_query(q, Position(after), 1_000).await.unwrap()
}

/// Positions of every event of `$all`, system streams included: the
/// `n`th event recorded is at `all[n - 1]`.
async fn all_positions(store: &LogStore) -> Vec<u64> {
    positions(
        &store
            .read_all(Position::START, 10_000, &ReadFilter::all())
            .await
            .unwrap(),
    )
}

async fn put(store: &LogStore, stream: &str, events: Vec<NewEvent>) {
    let cond = AppendCondition::new(Query::new(vec![item(&["Never"], &[])]).unwrap(), None);
    store
        .append_if(vec![part(stream, ExpectedVersion::Any, events)], &cond)
        .await
        .unwrap();
}

fn assert_condition_failed<T: std::fmt::Debug>(r: strata_core::Result<T>) -> Position {
    match r {
        Err(strata_core::Error::ConditionFailed { position }) => position,
        other => panic!("expected condition_failed, got {other:?}"),
    }
}

#[tokio::test]
async fn read_query_matches_types_and_tags() {
    let o = open().await;
    let store = &o.store;
    put(
        store,
        "s-1",
        vec![
            tagged("Subscribed", &["course:c1", "student:s1"]),
            tagged("Subscribed", &["course:c2", "student:s1"]),
            tagged("Left", &["course:c1", "student:s1"]),
            tagged("Opened", &[]),
        ],
    )
    .await;
    let p = all_positions(store).await;
    let at = |ns: &[usize]| ns.iter().map(|n| p[n - 1]).collect::<Vec<u64>>();
    let q = |items| async { positions(&read(store, &query(items), 0).await) };
    assert_eq!(
        q(vec![item(&["Subscribed"], &["course:c1"])]).await,
        at(&[1])
    );
    assert_eq!(q(vec![item(&[], &["student:s1"])]).await, at(&[1, 2, 3]));
    assert_eq!(
        q(vec![item(&["Subscribed", "Left"], &["course:c1"])]).await,
        at(&[1, 3])
    );
    assert_eq!(
        q(vec![item(&[], &["course:c1", "course:c2"])]).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        q(vec![item(&["Opened"], &[]), item(&[], &["course:c2"])]).await,
        at(&[2, 4])
    );
    assert_eq!(q(vec![]).await, at(&[1, 2, 3, 4]));
}

#[tokio::test]
async fn read_query_starts_after_and_stops_at_limit() {
    let o = open().await;
    let store = &o.store;
    let events = (0..10).map(|_| tagged("A", &["k:v"])).collect();
    put(store, "s-1", events).await;
    let p = all_positions(store).await;
    let q = query(vec![item(&[], &["k:v"])]);
    assert_eq!(positions(&read(store, &q, p[6]).await), p[7..10].to_vec());
    let two = store.read_query(&q, Position(p[2]), 2).await.unwrap();
    assert_eq!(positions(&two), p[3..5].to_vec());
    assert!(read(store, &q, p[9]).await.is_empty());
    let zero = store.read_query(&q, Position(0), 0).await;
    assert_eq!(zero.unwrap_err().kind(), "invalid_input");
}

#[tokio::test]
async fn read_query_skips_system_streams() {
    let o = open().await;
    let store = &o.store;
    let system = StreamId::system("$internal").unwrap();
    store
        .append(&system, ExpectedVersion::Any, vec![tagged("A", &[])])
        .await
        .unwrap();
    put(store, "s-1", vec![tagged("A", &[])]).await;
    let p = all_positions(store).await;
    assert_eq!(positions(&read(store, &Query::all(), 0).await), vec![p[1]]);
}

#[tokio::test]
async fn condition_fails_on_a_match_after_its_position() {
    let o = open().await;
    let store = &o.store;
    put(
        store,
        "s-1",
        vec![tagged("A", &["k:1"]), tagged("A", &["k:2"])],
    )
    .await;
    let p = all_positions(store).await;
    let cond = AppendCondition::new(query(vec![item(&["A"], &["k:2"])]), Some(Position(p[0])));
    let r = store
        .append_if(
            vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])],
            &cond,
        )
        .await;
    assert_eq!(assert_condition_failed(r), Position(p[1]));
    assert_eq!(store.head_position().await.unwrap(), Position(p[1]));
}

#[tokio::test]
async fn condition_without_after_counts_every_event() {
    let o = open().await;
    let store = &o.store;
    let unique = AppendCondition::new(query(vec![item(&["Registered"], &["user:ada"])]), None);
    let register = || {
        vec![part(
            "users",
            ExpectedVersion::Any,
            vec![tagged("Registered", &["user:ada"])],
        )]
    };
    store.append_if(register(), &unique).await.unwrap();
    assert_condition_failed(store.append_if(register(), &unique).await);
    let other = AppendCondition::new(query(vec![item(&["Registered"], &["user:bob"])]), None);
    let bob = vec![part(
        "users",
        ExpectedVersion::Any,
        vec![tagged("Registered", &["user:bob"])],
    )];
    store.append_if(bob, &other).await.unwrap();
    let p = all_positions(store).await;
    assert_eq!(p.len(), 2);
    assert_eq!(store.head_position().await.unwrap(), Position(p[1]));
}

#[tokio::test]
async fn condition_ignores_matches_at_or_before_after() {
    let o = open().await;
    let store = &o.store;
    put(
        store,
        "s-1",
        vec![tagged("A", &["k:v"]), tagged("B", &["k:v"])],
    )
    .await;
    let p = all_positions(store).await;
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
    let p = all_positions(store).await;
    assert_eq!(r[0].first_position, Position(p[2]));
    // Now the third event matches: the same condition fails.
    let again = vec![part(
        "s-1",
        ExpectedVersion::Any,
        vec![tagged("A", &["k:v"])],
    )];
    assert_eq!(
        assert_condition_failed(store.append_if(again, &cond).await),
        Position(p[2])
    );
}

#[tokio::test]
async fn exact_retry_answers_without_checking_again() {
    let o = open().await;
    let store = &o.store;
    let e = tagged("Registered", &["user:ada"]).with_id(EventId::new());
    let cond = AppendCondition::new(query(vec![item(&["Registered"], &["user:ada"])]), None);
    let parts = || vec![part("users", ExpectedVersion::Any, vec![e.clone()])];
    let first = store.append_if(parts(), &cond).await.unwrap();
    let again = store.append_if(parts(), &cond).await.unwrap();
    assert_eq!(first, again);
    let p = all_positions(store).await;
    assert_eq!(p.len(), 1);
    assert_eq!(store.head_position().await.unwrap(), Position(p[0]));
}

/// Conditions see the tag index rebuilt on open: an event recorded before
/// a reopen still fails a condition, and query reads still find it.
#[tokio::test]
async fn the_tag_index_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = || LogConfig::new(dir.path()).max_segment_bytes(64 * 1024);
    let store = LogStore::open(config()).await.unwrap();
    for i in 0..300 {
        let t = format!("n:{i}");
        put(&store, "s-1", vec![tagged("A", &[&t, "all:1"])]).await;
    }
    store.close().await.unwrap();
    let store = LogStore::open(config()).await.unwrap();
    let p = all_positions(&store).await;
    assert_eq!(p.len(), 300);
    let q = query(vec![item(&["A"], &["n:150"])]);
    assert_eq!(positions(&read(&store, &q, 0).await), vec![p[150]]);
    let all = query(vec![item(&[], &["all:1"])]);
    assert_eq!(positions(&read(&store, &all, 0).await), p);
    let cond = AppendCondition::new(q, Some(Position(p[149])));
    let r = store
        .append_if(
            vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])],
            &cond,
        )
        .await;
    assert_eq!(assert_condition_failed(r), Position(p[150]));
    let after = AppendCondition::new(
        query(vec![item(&["A"], &["n:150"])]),
        Some(Position(p[150])),
    );
    store
        .append_if(
            vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])],
            &after,
        )
        .await
        .unwrap();
    store.close().await.unwrap();
}

/// Conditions of requests in one group-commit batch see the events of the
/// requests before them: of many concurrent appends each guarded by "no
/// event with my tag yet", exactly one per tag succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditions_see_earlier_appends_of_the_same_batch() {
    let o = open().await;
    let store = std::sync::Arc::new(o.store);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let t = format!("key:{}", i % 4);
            let cond = AppendCondition::new(query(vec![item(&[], &[&t])]), None);
            store
                .append_if(
                    vec![part(
                        "claims",
                        ExpectedVersion::Any,
                        vec![tagged("Claimed", &[&t])],
                    )],
                    &cond,
                )
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(strata_core::Error::ConditionFailed { .. }) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(won, 4);
    assert_eq!(all_positions(&store).await.len(), 4);
}

/// Retention hides events from conditions and query reads as from `$all`:
/// an event cut by `truncate_before` no longer fails a condition.
#[tokio::test]
async fn retention_hides_events_from_conditions() {
    let o = open().await;
    let store = &o.store;
    put(
        store,
        "s-1",
        vec![tagged("A", &["k:old"]), tagged("A", &["k:new"])],
    )
    .await;
    let old = AppendCondition::new(query(vec![item(&[], &["k:old"])]), None);
    let claim = || vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])];
    assert_condition_failed(store.append_if(claim(), &old).await);
    let meta = strata_core::StreamMetadata {
        truncate_before: Some(2),
        ..Default::default()
    };
    store
        .set_stream_metadata(&StreamId::new("s-1").unwrap(), ExpectedVersion::Any, &meta)
        .await
        .unwrap();
    assert!(read(store, &old.fail_if_events_match, 0).await.is_empty());
    store.append_if(claim(), &old).await.unwrap();
    let new = AppendCondition::new(query(vec![item(&[], &["k:new"])]), None);
    assert_condition_failed(store.append_if(claim(), &new).await);
}

/// Events of an erased stream leave query reads and no longer fail a
/// condition (the case main's testkit adds, with the log store's positions).
#[tokio::test]
async fn erased_events_leave_reads_and_conditions() {
    let o = open().await;
    let store = &o.store;
    put(
        store,
        "person-1",
        vec![tagged("Registered", &["email:ada@example.com"])],
    )
    .await;
    put(
        store,
        "person-2",
        vec![tagged("Registered", &["email:bob@example.com"])],
    )
    .await;
    let before = all_positions(store).await;
    let q = query(vec![item(&[], &["email:ada@example.com"])]);
    store
        .erase_stream(&StreamId::new("person-1").unwrap(), ExpectedVersion::Any)
        .await
        .unwrap();
    assert!(read(store, &q, 0).await.is_empty());
    let cond = AppendCondition::new(q, None);
    let again = vec![part(
        "person-3",
        ExpectedVersion::Any,
        vec![tagged("Registered", &["email:ada@example.com"])],
    )];
    let r = store.append_if(again, &cond).await.unwrap();
    let everyone = positions(&read(store, &Query::all(), 0).await);
    assert_eq!(everyone, vec![before[1], r[0].first_position.0]);
}
