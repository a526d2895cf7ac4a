//! Stream metadata and retention in the log store: metadata rebuilt on
//! open from the checkpoint, the replayed log, or the log alone; appends to
//! metadata streams checked before anything is written; and `$all` pages
//! that fill up when retention cuts a long prefix of the log, in every read
//! plan and across sealed segments.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use strata_core::metadata::{metadata_stream, METADATA_EVENT_TYPE};
use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, RecordedEvent,
    StreamAppend, StreamId, StreamMetadata, SubscribeFrom, SubscriptionMessage, Version, FROM_END,
};
use strata_log::store::STREAM_CHECKPOINT_FILE;
use strata_log::{Durability, LogConfig, LogStore};
use ExpectedVersion::{Any, Exact, NoStream};

/// Small segments, so cut prefixes span sealed segments.
const SEGMENT_BYTES: u64 = 64 * 1024;

fn config(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::None)
        .max_segment_bytes(SEGMENT_BYTES)
}

fn sid(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn events(event_type: &str, n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| {
            NewEvent::json(
                event_type,
                &serde_json::json!({ "i": i, "pad": "x".repeat(64) }),
            )
            .unwrap()
        })
        .collect()
}

fn versions(events: &[RecordedEvent]) -> Vec<Version> {
    events.iter().map(|e| e.version).collect()
}

async fn read_fwd(store: &LogStore, s: &StreamId) -> Vec<RecordedEvent> {
    store
        .read_stream(s, 1, 100_000, Direction::Forward)
        .await
        .unwrap()
}

/// Every event of `$all` that passes `filter`, in pages of `page`.
async fn all_pages(store: &LogStore, filter: &ReadFilter, page: usize) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    let mut from = Position::START;
    loop {
        let got = store.read_all(from, page, filter).await.unwrap();
        let Some(last) = got.last() else { break };
        from = last.position.next();
        out.extend(got);
    }
    out
}

fn max_count(n: u64) -> StreamMetadata {
    StreamMetadata {
        max_count: Some(n),
        ..Default::default()
    }
}

/// What the reopen test sets: `account-1` keeps 3 of 10 events (its
/// metadata set twice), `order-1` is truncated before 3, `ghost-1` has
/// metadata and no events.
async fn set_up_metadata(store: &LogStore) {
    let account = sid("account-1");
    let order = sid("order-1");
    store
        .append(&account, NoStream, events("Deposited", 10))
        .await
        .unwrap();
    store
        .append(&order, NoStream, events("Placed", 5))
        .await
        .unwrap();
    store
        .set_stream_metadata(&account, NoStream, &max_count(5))
        .await
        .unwrap();
    let custom = StreamMetadata {
        max_count: Some(3),
        custom: Some(serde_json::json!({ "owner": "ada" })),
        ..Default::default()
    };
    store
        .set_stream_metadata(&account, Exact(1), &custom)
        .await
        .unwrap();
    let truncate = StreamMetadata {
        truncate_before: Some(3),
        ..Default::default()
    };
    store
        .set_stream_metadata(&order, NoStream, &truncate)
        .await
        .unwrap();
    store
        .set_stream_metadata(&sid("ghost-1"), NoStream, &max_count(1))
        .await
        .unwrap();
}

/// Reads honour what `set_up_metadata` set.
async fn check_metadata(store: &LogStore, how: &str) {
    let account = sid("account-1");
    let order = sid("order-1");
    let got = store.stream_metadata(&account).await.unwrap().unwrap();
    assert_eq!(got.version, 2, "{how}");
    assert_eq!(got.metadata.max_count, Some(3), "{how}");
    assert_eq!(
        got.metadata.custom,
        Some(serde_json::json!({ "owner": "ada" })),
        "{how}"
    );
    assert_eq!(
        versions(&read_fwd(store, &account).await),
        vec![8, 9, 10],
        "{how}"
    );
    let back = store
        .read_stream(&account, FROM_END, 10, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(versions(&back), vec![10, 9, 8], "{how}");
    let info = store.stream_info(&account).await.unwrap().unwrap();
    assert_eq!(
        (info.version, info.first_readable_version),
        (10, 8),
        "{how}"
    );
    assert_eq!(
        versions(&read_fwd(store, &order).await),
        vec![3, 4, 5],
        "{how}"
    );
    assert_eq!(
        store
            .stream_metadata(&sid("ghost-1"))
            .await
            .unwrap()
            .unwrap()
            .version,
        1,
        "{how}"
    );
    assert_eq!(
        store.stream_info(&sid("ghost-1")).await.unwrap(),
        None,
        "{how}"
    );
    // `$all`: the kept events, and only the latest metadata event of each
    // metadata stream.
    let all = all_pages(store, &ReadFilter::all(), 4).await;
    let shown: Vec<(String, Version)> = all
        .iter()
        .map(|e| (e.stream_id.as_str().to_string(), e.version))
        .collect();
    let mut expected: Vec<(String, Version)> = Vec::new();
    expected.extend((8..=10).map(|v| ("account-1".to_string(), v)));
    expected.extend((3..=5).map(|v| ("order-1".to_string(), v)));
    expected.push(("$$account-1".to_string(), 2));
    expected.push(("$$order-1".to_string(), 1));
    expected.push(("$$ghost-1".to_string(), 1));
    let mut sorted = shown.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{how}: {shown:?}");
}

async fn reopen(store: LogStore, dir: &Path, remove: &[&str]) -> LogStore {
    store.close().await.unwrap();
    for name in remove {
        let p = dir.join(name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if p.exists() {
            std::fs::remove_file(&p).unwrap();
        }
    }
    LogStore::open(config(dir)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_is_rebuilt_on_open_with_and_without_derived_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    set_up_metadata(&store).await;
    check_metadata(&store, "before closing").await;
    // The checkpoint covers every metadata event: they are read by position.
    let store = reopen(store, dir.path(), &[]).await;
    assert!(dir.path().join(STREAM_CHECKPOINT_FILE).exists());
    check_metadata(&store, "with the checkpoint").await;
    let store = reopen(store, dir.path(), &[STREAM_CHECKPOINT_FILE]).await;
    check_metadata(&store, "without the checkpoint").await;
    let store = reopen(store, dir.path(), &[STREAM_CHECKPOINT_FILE, "index"]).await;
    check_metadata(&store, "without the checkpoint and indexes").await;
    let store = reopen(store, dir.path(), &["index"]).await;
    check_metadata(&store, "without indexes").await;
    store.close().await.unwrap();
}

/// A checkpoint that covers an older setting than the log holds: the
/// replayed, newer one wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_metadata_overrides_the_checkpointed_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = sid("account-1");
    let store = LogStore::open(config(dir.path())).await.unwrap();
    store
        .append(&s, NoStream, events("Deposited", 6))
        .await
        .unwrap();
    store
        .set_stream_metadata(&s, NoStream, &max_count(4))
        .await
        .unwrap();
    store.close().await.unwrap();
    let old_checkpoint = std::fs::read(dir.path().join(STREAM_CHECKPOINT_FILE)).unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![3, 4, 5, 6]);
    store
        .set_stream_metadata(&s, Exact(1), &max_count(2))
        .await
        .unwrap();
    store.close().await.unwrap();
    // As if the newer checkpoint had never been written.
    std::fs::write(dir.path().join(STREAM_CHECKPOINT_FILE), old_checkpoint).unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    assert_eq!(versions(&read_fwd(&store, &s).await), vec![5, 6]);
    assert_eq!(store.stream_metadata(&s).await.unwrap().unwrap().version, 2);
    store.close().await.unwrap();
}

/// An append to a metadata stream must hold valid `$metadata` events; a bad
/// one is refused whole, alone or in a multi-stream append, and nothing is
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_metadata_appends_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    let s = sid("account-1");
    let meta = metadata_stream(&s).unwrap();
    let wrong_type = NewEvent::json("Deposited", &max_count(1)).unwrap();
    let bad_json = NewEvent::json_bytes(METADATA_EVENT_TYPE, &br#"{"max_count": "many"}"#[..]);
    let zero = NewEvent::json_bytes(METADATA_EVENT_TYPE, &br#"{"max_count": 0}"#[..]);
    let unknown = NewEvent::json_bytes(METADATA_EVENT_TYPE, &br#"{"keep": 1}"#[..]);
    for bad in [wrong_type, bad_json, zero, unknown] {
        let e = store.append(&meta, Any, vec![bad]).await.unwrap_err();
        assert_eq!(e.kind(), "invalid_input", "{e}");
    }
    let good = max_count(1).to_event().unwrap();
    let e = store
        .append_multi(vec![
            StreamAppend::new(s.clone(), NoStream, events("Deposited", 1)),
            StreamAppend::new(
                meta.clone(),
                NoStream,
                vec![good, NewEvent::json("Other", &max_count(1)).unwrap()],
            ),
        ])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "invalid_input", "{e}");
    assert_eq!(store.head_position().await.unwrap(), Position::START);
    assert_eq!(store.stream_info(&meta).await.unwrap(), None);
    assert_eq!(store.stream_info(&s).await.unwrap(), None);
    assert_eq!(store.stream_metadata(&s).await.unwrap(), None);
    // A valid one goes through as a plain append too.
    store
        .append(&meta, NoStream, vec![max_count(1).to_event().unwrap()])
        .await
        .unwrap();
    assert_eq!(store.stream_metadata(&s).await.unwrap().unwrap().version, 1);
    store.close().await.unwrap();
}

/// Seconds of `max_age` in the long-prefix test: the old events are older
/// than this when it is set, and the checks after the new events are
/// appended must take less (a margin for a loaded machine).
const AGE_SECONDS: u64 = 5;
/// Events of each stream whose prefix retention cuts.
const CUT_EVENTS: usize = 1_500;

/// Every event `$all` should show: each stream's readable events, merged
/// by position.
async fn expected_all(store: &LogStore, streams: &[StreamId]) -> Vec<RecordedEvent> {
    let mut by_position = BTreeMap::new();
    for s in streams {
        for e in read_fwd(store, s).await {
            by_position.insert(e.position, e);
        }
    }
    by_position.into_values().collect()
}

fn keys(events: &[RecordedEvent]) -> Vec<(String, Version)> {
    events
        .iter()
        .map(|e| (e.stream_id.as_str().to_string(), e.version))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_fill_when_retention_cuts_a_long_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path())).await.unwrap();
    let aged = sid("aged-1");
    let counted = sid("counted-1");
    let fresh = sid("fresh-1");
    // A long prefix of two streams, interleaved, over several segments.
    for _ in 0..CUT_EVENTS / 100 {
        store.append(&aged, Any, events("Seen", 100)).await.unwrap();
        store
            .append(&counted, Any, events("Counted", 100))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(AGE_SECONDS * 1000 + 300)).await;
    for _ in 0..3 {
        store.append(&aged, Any, events("Seen", 20)).await.unwrap();
        store
            .append(&counted, Any, events("Counted", 20))
            .await
            .unwrap();
        store.append(&fresh, Any, events("Made", 20)).await.unwrap();
    }
    let age = StreamMetadata {
        max_age: Some(AGE_SECONDS),
        ..Default::default()
    };
    store
        .set_stream_metadata(&aged, NoStream, &age)
        .await
        .unwrap();
    store
        .set_stream_metadata(&counted, NoStream, &max_count(30))
        .await
        .unwrap();
    let segments = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .count();
    assert!(
        segments > 3,
        "the cut prefix spans sealed segments: {segments}"
    );

    // Stream reads start after the cut prefix.
    let first_kept = CUT_EVENTS as u64 + 1;
    let kept = read_fwd(&store, &aged).await;
    assert_eq!(
        versions(&kept),
        (first_kept..=first_kept + 59).collect::<Vec<_>>()
    );
    let info = store.stream_info(&aged).await.unwrap().unwrap();
    assert_eq!(info.first_readable_version, first_kept);
    let from_one = store
        .read_stream(&aged, 1, 5, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(
        versions(&from_one),
        (first_kept..first_kept + 5).collect::<Vec<_>>()
    );
    let back = store
        .read_stream(&aged, first_kept + 1, 10, Direction::Backward)
        .await
        .unwrap();
    assert_eq!(versions(&back), vec![first_kept + 1, first_kept]);
    let counted_kept = read_fwd(&store, &counted).await;
    assert_eq!(counted_kept.len(), 30);
    assert_eq!(counted_kept[0].version, CUT_EVENTS as u64 + 31);

    // `$all`: the first page is full although thousands of events before
    // its first one are cut; paging reads exactly what the streams show.
    let everything = [
        metadata_stream(&aged).unwrap(),
        metadata_stream(&counted).unwrap(),
        aged.clone(),
        counted.clone(),
        fresh.clone(),
    ];
    let expected = expected_all(&store, &everything).await;
    assert_eq!(expected.len(), 60 + 30 + 60 + 2);
    let page = store
        .read_all(Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(keys(&page), keys(&expected[..100]));
    assert_eq!(
        keys(&all_pages(&store, &ReadFilter::all(), 25).await),
        keys(&expected)
    );

    // Every plan: one stream, a prefix, a category, event types.
    let plans = [
        (ReadFilter::all().stream(aged.clone()), 60),
        (ReadFilter::all().stream_prefix("age"), 60),
        (ReadFilter::all().stream_prefix("co"), 30),
        (ReadFilter::all().category("counted"), 30),
        (ReadFilter::all().event_types(["Seen", "Counted"]), 90),
        (ReadFilter::all().event_types([METADATA_EVENT_TYPE]), 2),
    ];
    for (filter, total) in plans {
        let want: Vec<RecordedEvent> = expected
            .iter()
            .filter(|e| filter.matches(e))
            .cloned()
            .collect();
        assert_eq!(want.len(), total, "{filter:?}");
        let page = store.read_all(Position::START, 20, &filter).await.unwrap();
        let n = total.min(20);
        assert_eq!(keys(&page), keys(&want[..n]), "{filter:?}");
        assert_eq!(
            keys(&all_pages(&store, &filter, 7).await),
            keys(&want),
            "{filter:?}"
        );
    }

    // A subscription catches up on exactly the kept events.
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("subscription message")
            .expect("subscription open")
            .unwrap();
        match msg {
            SubscriptionMessage::Event(e) => seen.push(e),
            SubscriptionMessage::CaughtUp(_) => break,
        }
    }
    assert_eq!(keys(&seen), keys(&expected));

    // The cut holds after a reopen without derived files (replay).
    let store = reopen(store, dir.path(), &[STREAM_CHECKPOINT_FILE, "index"]).await;
    let page = store
        .read_all(Position::START, 100, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(keys(&page), keys(&expected[..100]));
    store.close().await.unwrap();
}
