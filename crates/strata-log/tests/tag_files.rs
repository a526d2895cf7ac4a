//! Tag files beside the index files: opening a store loads the tag index
//! from them and reads only the active segment, query reads and conditions
//! answer the same after a reopen, and a missing or damaged tag file is
//! rebuilt from its segment (and reported by verify when damaged).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

use serde_json::json;
use strata_core::dcb::{AppendCondition, Query, QueryItem, Tag};
use strata_core::{EventStore, ExpectedVersion, NewEvent, Position, StreamAppend, StreamId};
use strata_log::io::FsStorage;
use strata_log::{Durability, LogConfig, LogStore};

/// Events the tests write: enough to fill dozens of 64 KiB segments.
const EVENTS: usize = 3_000;
/// Events per decision batch appended at once.
const PER_APPEND: usize = 10;

fn config(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(64 * 1024)
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

fn item(types: &[&str], tags: &[&str]) -> QueryItem {
    QueryItem::new(types.iter().copied(), tags.iter().map(|t| tag(t)))
}

fn query(items: Vec<QueryItem>) -> Query {
    Query::new(items).unwrap()
}

/// Event `i`: a subscription of student `i % 97` to course `i % 13`, every
/// fifth one also tagged with its own number.
fn event(i: usize) -> NewEvent {
    let mut tags = vec![
        tag(&format!("course:c{}", i % 13)),
        tag(&format!("student:s{}", i % 97)),
    ];
    if i.is_multiple_of(5) {
        tags.push(tag(&format!("n:{i}")));
    }
    let ty = if i.is_multiple_of(2) {
        "Subscribed"
    } else {
        "Left"
    };
    NewEvent::json(ty, &json!({ "i": i, "pad": "x".repeat(200) }))
        .unwrap()
        .with_tags(tags)
}

async fn fill(store: &LogStore) {
    for start in (0..EVENTS).step_by(PER_APPEND) {
        let parts = vec![StreamAppend::new(
            StreamId::new(format!("course-{}", start % 13)).unwrap(),
            ExpectedVersion::Any,
            (start..start + PER_APPEND).map(event).collect(),
        )];
        store.append_multi(parts).await.unwrap();
    }
}

fn queries() -> Vec<Query> {
    vec![
        query(vec![item(&[], &["course:c3"])]),
        query(vec![item(&["Subscribed"], &["student:s5"])]),
        query(vec![item(&["Left"], &[])]),
        query(vec![
            item(&["Subscribed"], &["course:c1", "student:s40"]),
            item(&[], &["n:2500"]),
        ]),
        query(vec![item(&[], &["nobody:x"])]),
        Query::all(),
    ]
}

/// Every query's answer, as (position, id) pairs.
async fn answers(store: &LogStore) -> Vec<Vec<(u64, strata_core::EventId)>> {
    let mut out = Vec::new();
    for q in queries() {
        let events = store
            .read_query(&q, Position::START, 100_000)
            .await
            .unwrap();
        out.push(events.iter().map(|e| (e.position.0, e.id)).collect());
    }
    out
}

fn tag_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tags"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_loads_tag_files_and_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    fill(&store).await;
    let before = answers(&store).await;
    assert_eq!(before[5].len(), EVENTS);
    assert!(before[0].len() > EVENTS / 14);
    assert!(before[4].is_empty());
    store.close().await.unwrap();
    let files = tag_files(dir.path());
    assert!(files.len() >= 10, "only {} tag files", files.len());

    let store = LogStore::open(config(dir.path())).await.unwrap();
    let load = store.tag_index_load();
    assert_eq!(load.segments_rebuilt, 0);
    assert_eq!(
        load.events_loaded + load.events_scanned,
        EVENTS as u64,
        "{load:?}"
    );
    // Only the active segment is read: a small share of the events.
    assert!(
        load.events_scanned * 10 < EVENTS as u64,
        "a full scan on open: {load:?}"
    );
    assert_eq!(answers(&store).await, before);

    // Conditions answer from the loaded index too.
    let n = &before[3];
    let q = query(vec![item(&[], &["n:2500"])]);
    let at = before[5][2500].0;
    assert!(n.iter().any(|(p, _)| *p == at));
    let cond = AppendCondition::new(q.clone(), Some(Position(at - 1)));
    let r = store
        .append_if(
            vec![StreamAppend::new(
                StreamId::new("other-1").unwrap(),
                ExpectedVersion::Any,
                vec![event(1)],
            )],
            &cond,
        )
        .await;
    match r {
        Err(strata_core::Error::ConditionFailed { position }) => assert_eq!(position.0, at),
        other => panic!("expected condition_failed, got {other:?}"),
    }
    store
        .append_if(
            vec![StreamAppend::new(
                StreamId::new("other-1").unwrap(),
                ExpectedVersion::Any,
                vec![event(1)],
            )],
            &AppendCondition::new(q, Some(Position(at))),
        )
        .await
        .unwrap();
    store.close().await.unwrap();
    let report = strata_log::verify::verify(dir.path(), &FsStorage).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_and_damaged_tag_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    fill(&store).await;
    let before = answers(&store).await;
    store.close().await.unwrap();
    let files = tag_files(dir.path());
    std::fs::remove_file(&files[0]).unwrap();
    let mut bytes = std::fs::read(&files[3]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&files[3], &bytes).unwrap();
    let report = strata_log::verify::verify(dir.path(), &FsStorage).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].file, files[3]);

    let store = LogStore::open(config(dir.path())).await.unwrap();
    assert_eq!(store.tag_index_load().segments_rebuilt, 2);
    assert_eq!(answers(&store).await, before);
    store.close().await.unwrap();
    assert_eq!(tag_files(dir.path()), files);
    let report = strata_log::verify::verify(dir.path(), &FsStorage).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let store = LogStore::open(config(dir.path())).await.unwrap();
    assert_eq!(store.tag_index_load().segments_rebuilt, 0);
    assert_eq!(answers(&store).await, before);
    store.close().await.unwrap();
}
