//! Dynamic consistency boundaries on the log store beyond the conformance
//! cases: the tag index rebuilt on open, conditions that see the earlier
//! appends of their own group-commit batch, and retention hiding events
//! from conditions.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{
    EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent, StreamAppend,
    StreamId,
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

/// Conditions over an erased stream's events, before and after a scavenge
/// removed their data (the tag index still lists their positions until
/// the store reopens): erased events never count, and the removed records
/// read for their place count as hidden, not as unreadable matches.
#[tokio::test]
async fn erased_and_scavenged_events_never_fail_a_condition() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(
        LogConfig::new(dir.path())
            .durability(Durability::Always)
            .max_segment_bytes(32 * 1024)
            .scavenge_bytes_per_second(0),
    )
    .await
    .unwrap();
    let store = &store;
    put(store, "gone-1", vec![tagged("A", &["k:gone"]); 40]).await;
    put(store, "kept-1", vec![tagged("A", &["k:kept"])]).await;
    let gone = AppendCondition::new(query(vec![item(&[], &["k:gone"])]), None);
    let claim = || vec![part("s-2", ExpectedVersion::Any, vec![tagged("B", &[])])];
    assert_condition_failed(store.append_if(claim(), &gone).await);
    store
        .erase_stream(&StreamId::new("gone-1").unwrap(), ExpectedVersion::Any)
        .await
        .unwrap();
    store.append_if(claim(), &gone).await.unwrap();
    let report = store
        .scavenge(strata_core::ScavengeOptions { erased_only: true })
        .await
        .unwrap();
    assert!(report.events_removed >= 40, "{report:?}");
    store.append_if(claim(), &gone).await.unwrap();
    assert!(read(store, &gone.fail_if_events_match, 0).await.is_empty());
    let kept = AppendCondition::new(query(vec![item(&[], &["k:kept"])]), None);
    assert_condition_failed(store.append_if(claim(), &kept).await);
}
