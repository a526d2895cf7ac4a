//! Erasure on the log store: an erased stream's events vanish from every
//! read at once (`$all` of every plan and subscriptions included) and stay
//! gone through a reopen with or without the stream checkpoint; the next
//! scavenge (`erased_only` forces one, sealing the active segment) removes
//! their data and its metadata stream's, so no byte of either is left
//! anywhere in the directory; other streams keep their events, positions
//! and versions; `verify` is clean.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use strata_core::{
    Direction, Error, EventStore, ExpectedVersion, Metadata, NewEvent, Position, ReadFilter,
    RecordedEvent, ScavengeOptions, StreamId, StreamMetadata, StreamState, SubscribeFrom,
    SubscriptionMessage,
};
use strata_log::compress::Compression;
use strata_log::{Durability, LogConfig, LogStore};

const SECRET: &str = "SECRET-PERSON-7f3a";
const KEPT: &str = "KEPT-OTHER-91c2";

fn config(dir: &Path, compressed: bool) -> LogConfig {
    let c = LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(32 * 1024)
        .scavenge_bytes_per_second(0);
    if compressed {
        c.compression(Some(Compression::default()))
    } else {
        c
    }
}

/// The files under `dir` whose bytes (decompressed) hold `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    strata_log::inspect::files_holding(dir, needle.as_bytes()).unwrap()
}

/// An event whose data and metadata carry `marker`.
fn event(i: usize, marker: &str) -> NewEvent {
    NewEvent::json(
        "Noted",
        &serde_json::json!({ "i": i, "note": format!("{marker}-{i}"), "pad": "z".repeat(300) }),
    )
    .unwrap()
    .with_metadata(Metadata::default().with_user_id(format!("{marker}-user")))
}

fn person() -> StreamId {
    StreamId::new("person-7").unwrap()
}

/// Appends 300 events round-robin over `person-7` and three other streams,
/// over several segments; returns the other streams' events as read back.
async fn fill(store: &LogStore) -> Vec<RecordedEvent> {
    for i in 0..300 {
        let (s, marker) = match i % 4 {
            0 => (person(), SECRET),
            k => (StreamId::new(format!("other-{k}")).unwrap(), KEPT),
        };
        store
            .append(&s, ExpectedVersion::Any, vec![event(i, marker)])
            .await
            .unwrap();
    }
    others(store).await
}

async fn others(store: &LogStore) -> Vec<RecordedEvent> {
    store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream_id.as_str().starts_with("other-"))
        .collect()
}

/// No read of any plan returns an event of `person-7`; the other streams'
/// events are all there, unchanged.
async fn assert_erased(store: &LogStore, kept: &[RecordedEvent]) {
    let p = person();
    match store.read_stream(&p, 1, 10, Direction::Forward).await {
        Err(Error::StreamDeleted { .. }) => {}
        other => panic!("reading an erased stream: {other:?}"),
    }
    match store
        .append(&p, ExpectedVersion::Any, vec![event(0, "again")])
        .await
    {
        Err(Error::StreamDeleted { .. }) => {}
        other => panic!("appending to an erased stream: {other:?}"),
    }
    assert_eq!(store.stream_metadata(&p).await.unwrap(), None);
    let info = store.stream_info(&p).await.unwrap().unwrap();
    assert_eq!(info.state, StreamState::Tombstoned);
    assert_eq!(info.first_readable_version, info.version + 1);
    let filters = [
        ReadFilter::all(),
        ReadFilter::all().stream(p.clone()),
        ReadFilter::all().category("person"),
        ReadFilter::all().event_types(["Noted"]),
        ReadFilter::all().stream_prefix("person"),
    ];
    for f in &filters {
        let got = store.read_all(Position::START, 10_000, f).await.unwrap();
        assert!(
            got.iter().all(|e| e.stream_id != p),
            "$all with {f:?} still shows the erased stream"
        );
    }
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    let got: Vec<&RecordedEvent> = all
        .iter()
        .filter(|e| e.stream_id.as_str().starts_with("other-"))
        .collect();
    assert_eq!(got.len(), kept.len());
    for (g, k) in got.iter().zip(kept) {
        assert_eq!(
            (&g.stream_id, g.version, g.position, g.id, &g.data),
            (&k.stream_id, k.version, k.position, k.id, &k.data)
        );
    }
}

/// A subscription from the start sees the other streams' events, in
/// order, and none of the erased stream's.
async fn assert_subscription_skips(store: &LogStore, kept: &[RecordedEvent]) {
    let mut sub = store
        .subscribe(SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let SubscriptionMessage::Event(e) = sub.next().await.unwrap().unwrap() {
        assert_ne!(
            e.stream_id,
            person(),
            "a subscription shows an erased event"
        );
        if e.stream_id.as_str().starts_with("other-") {
            seen.push(e.position);
        }
    }
    let want: Vec<Position> = kept.iter().map(|e| e.position).collect();
    assert_eq!(seen, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_stream_is_gone_from_every_read_at_once_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path(), false)).await.unwrap();
    let kept = fill(&store).await;
    // The guard is honoured.
    match store
        .erase_stream(&person(), ExpectedVersion::Exact(3))
        .await
    {
        Err(Error::WrongExpectedVersion { .. }) => {}
        other => panic!("a failed guard: {other:?}"),
    }
    store
        .erase_stream(&person(), ExpectedVersion::Exact(75))
        .await
        .unwrap();
    assert_erased(&store, &kept).await;
    assert_subscription_skips(&store, &kept).await;
    // Erasing again (the stream is tombstoned) is allowed with `Any` only.
    store
        .erase_stream(&person(), ExpectedVersion::Any)
        .await
        .unwrap();
    match store
        .erase_stream(&person(), ExpectedVersion::Exact(75))
        .await
    {
        Err(Error::StreamDeleted { .. }) => {}
        other => panic!("a guard on an erased stream: {other:?}"),
    }
    store.close().await.unwrap();

    // Reopened from the stream checkpoint.
    let store = LogStore::open(config(dir.path(), false)).await.unwrap();
    assert_erased(&store, &kept).await;
    store.close().await.unwrap();

    // Reopened by replaying every frame.
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let store = LogStore::open(config(dir.path(), false)).await.unwrap();
    assert_erased(&store, &kept).await;
    assert_subscription_skips(&store, &kept).await;
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstoned_stream_can_still_be_erased() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path(), false)).await.unwrap();
    let kept = fill(&store).await;
    store
        .tombstone_stream(&person(), ExpectedVersion::Any)
        .await
        .unwrap();
    // A tombstone alone leaves the events in `$all`.
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert!(all.iter().any(|e| e.stream_id == person()));
    store
        .erase_stream(&person(), ExpectedVersion::Any)
        .await
        .unwrap();
    assert_erased(&store, &kept).await;
    store.close().await.unwrap();
}

/// The erased stream's data and metadata bytes are found nowhere in the
/// directory after `erased_only` scavenge, whether its events lay in plain
/// or compressed sealed segments or in the active one.
async fn erasure_leaves_no_byte(compressed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(config(dir.path(), compressed))
        .await
        .unwrap();
    let kept = fill(&store).await;
    // A tombstoned stream that `erased_only` must leave alone.
    let gone = StreamId::new("gone-1").unwrap();
    store
        .append(
            &gone,
            ExpectedVersion::Any,
            vec![event(0, "TOMBSTONED-5d1e")],
        )
        .await
        .unwrap();
    store
        .tombstone_stream(&gone, ExpectedVersion::Any)
        .await
        .unwrap();
    // Its metadata (two events) goes with it.
    let settings = StreamMetadata {
        custom: Some(serde_json::json!({ "owner": format!("{SECRET}-meta") })),
        ..Default::default()
    };
    for expected in [ExpectedVersion::NoStream, ExpectedVersion::Exact(1)] {
        store
            .set_stream_metadata(&person(), expected, &settings)
            .await
            .unwrap();
    }
    // The last events of the erased stream lie in the active segment.
    store.settle().await.unwrap();
    if compressed {
        // Some of its events lie in compressed segments by now.
        assert!(strata_log::inspect::files(dir.path())
            .unwrap()
            .iter()
            .any(|p| p.extension().is_some_and(|x| x == "zseg")));
    }
    assert!(files_holding(dir.path(), SECRET).len() >= 2);
    store
        .erase_stream(&person(), ExpectedVersion::Any)
        .await
        .unwrap();
    let report = store
        .scavenge(ScavengeOptions { erased_only: true })
        .await
        .unwrap();
    assert_eq!(
        report.events_removed, 77,
        "75 events and 2 of metadata: {report:?}"
    );
    store.settle().await.unwrap();
    assert_eq!(
        files_holding(dir.path(), SECRET),
        Vec::<PathBuf>::new(),
        "the erased stream's data is still in these files"
    );
    assert!(!files_holding(dir.path(), "TOMBSTONED-5d1e").is_empty());
    assert!(!files_holding(dir.path(), KEPT).is_empty());
    assert_erased(&store, &kept).await;
    // Appends go on in the new active segment.
    let r = store
        .append(
            &StreamId::new("other-1").unwrap(),
            ExpectedVersion::Any,
            vec![event(1, KEPT)],
        )
        .await
        .unwrap();
    assert!(r.first_position > kept.last().unwrap().position);
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
    let store = LogStore::open(config(dir.path(), compressed))
        .await
        .unwrap();
    let after = others(&store).await;
    assert_eq!(after.last().map(|e| e.position), Some(r.first_position));
    assert_eq!(after.len(), kept.len() + 1);
    assert_erased(&store, &after).await;
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_byte_of_the_stream_in_the_directory() {
    erasure_leaves_no_byte(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_leaves_no_byte_of_the_stream_in_a_compressed_store() {
    erasure_leaves_no_byte(true).await;
}
