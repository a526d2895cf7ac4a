//! Tags persist in the log: they read back from streams and `$all`, before
//! and after a reopen and after a scavenge rewrites the segments holding
//! them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use strata_core::dcb::Tag;
use strata_core::{
    Direction, EventId, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter,
    ScavengeOptions, StreamId,
};
use strata_log::{Durability, LogConfig, LogStore};

fn config(dir: &std::path::Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(64 * 1024)
        .scavenge_bytes_per_second(0)
}

fn tag(t: &str) -> Tag {
    Tag::new(t).unwrap()
}

/// The tags event `i` is appended with: unsorted and with a repeat, so
/// the store must keep them as a set.
fn tags_of(i: usize) -> Vec<Tag> {
    match i % 3 {
        0 => Vec::new(),
        1 => vec![tag(&format!("student:s{i}")), tag("course:c1")],
        _ => vec![
            tag(&format!("n:{i}")),
            tag("course:c2"),
            tag(&format!("n:{i}")),
        ],
    }
}

fn sorted(tags: Vec<Tag>) -> Vec<Tag> {
    strata_core::dcb::tag_set(tags)
}

/// Every event of `$all` of the user streams: id -> tags.
async fn all_tags(store: &LogStore) -> HashMap<EventId, Vec<Tag>> {
    store
        .read_all(Position::START, 100_000, &ReadFilter::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !e.stream_id.is_system())
        .map(|e| (e.id, e.tags))
        .collect()
}

#[tokio::test]
async fn tags_survive_reads_reopen_and_scavenge() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    let mut want = HashMap::new();
    for i in 0..900 {
        let s = StreamId::new(format!("s-{}", i % 10)).unwrap();
        let id = EventId::new();
        let e = NewEvent::json(
            "Happened",
            &serde_json::json!({ "i": i, "pad": "x".repeat(150) }),
        )
        .unwrap()
        .with_id(id)
        .with_tags(tags_of(i));
        store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
        if i % 10 >= 5 {
            want.insert(id, sorted(tags_of(i)));
        }
    }
    let s1 = StreamId::new("s-6").unwrap();
    let read = store
        .read_stream(&s1, 1, 1_000, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(read.len(), 90);
    for e in &read {
        assert_eq!(Some(&e.tags), want.get(&e.id));
    }
    for i in 0..5 {
        let s = StreamId::new(format!("s-{i}")).unwrap();
        store.delete_stream(&s, ExpectedVersion::Any).await.unwrap();
    }
    let before: HashMap<_, _> = all_tags(&store).await;
    assert_eq!(before.len(), 900);
    for (id, tags) in &want {
        assert_eq!(before.get(id), Some(tags));
    }
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert!(report.segments_rewritten > 0, "{report:?}");
    assert!(report.events_removed > 0, "{report:?}");
    let after = all_tags(&store).await;
    for (id, tags) in &want {
        assert_eq!(after.get(id), Some(tags), "after scavenge");
    }
    store.close().await.unwrap();

    let store = LogStore::open(config(dir.path())).await.unwrap();
    let reopened = all_tags(&store).await;
    for (id, tags) in &want {
        assert_eq!(reopened.get(id), Some(tags), "after reopen");
    }
    let read = store
        .read_stream(&s1, u64::MAX, 1_000, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(read.len(), 90);
    for e in &read {
        assert_eq!(Some(&e.tags), want.get(&e.id));
    }
    store.close().await.unwrap();
}
