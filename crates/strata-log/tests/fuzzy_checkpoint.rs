//! Stream checkpoints written while the writer goes on: each stream may hold
//! events after the log location the checkpoint covers. Opening over such a
//! checkpoint replays to the same store; one that holds events past the
//! end of the log is not used.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::*;
use strata_core::metadata::StreamMetadata;
use strata_core::{Direction, EventStore, ExpectedVersion, Position, StreamId};
use strata_log::format::position_of;
use strata_log::segment::FIRST_FRAME_OFFSET;
use strata_log::streams::{StreamIndex, STREAM_CHECKPOINT_FILE};
use strata_log::{LogConfig, LogStore};

const STREAMS: usize = 5;

fn metadata(max_count: u64) -> StreamMetadata {
    StreamMetadata {
        max_count: Some(max_count),
        ..Default::default()
    }
}

fn read_checkpoint(dir: &Path) -> (StreamIndex, (u32, u64)) {
    let bytes = std::fs::read(dir.join(STREAM_CHECKPOINT_FILE)).unwrap();
    StreamIndex::decode_checkpoint(&bytes).unwrap()
}

fn write_checkpoint(dir: &Path, index: &StreamIndex, covers: (u32, u64)) {
    std::fs::write(
        dir.join(STREAM_CHECKPOINT_FILE),
        index.encode_checkpoint(covers),
    )
    .unwrap();
}

/// Appends `n` events, soft-deletes stream 0 through its head and sets
/// stream 1's `max_count`.
async fn append_delete_and_set(store: &LogStore, n: usize, max_count: u64) {
    append_some(store, n, STREAMS, &mut Vec::new()).await;
    store
        .delete_stream(&stream(0), ExpectedVersion::Any)
        .await
        .unwrap();
    store
        .set_stream_metadata(&stream(1), ExpectedVersion::Any, &metadata(max_count))
        .await
        .unwrap();
}

/// Two sessions of appends, soft deletes (the second through a later
/// version), metadata and a tombstone; returns what the first session's
/// close-time checkpoint covered.
async fn two_sessions(dir: &Path) -> (u32, u64) {
    let store = LogStore::open(config(dir)).await.unwrap();
    append_delete_and_set(&store, 30, 3).await;
    store.close().await.unwrap();
    let (_, first_covers) = read_checkpoint(dir);

    let store = LogStore::open(config(dir)).await.unwrap();
    append_delete_and_set(&store, 40, 5).await;
    // An event after the second delete.
    append_some(&store, 1, 1, &mut Vec::new()).await;
    store
        .tombstone_stream(&stream(2), ExpectedVersion::Any)
        .await
        .unwrap();
    store.close().await.unwrap();
    first_covers
}

/// Everything a reader sees of the streams: info, metadata and every
/// readable event.
async fn seen(dir: &Path) -> Vec<String> {
    let store = LogStore::open(config(dir)).await.unwrap();
    let mut out = Vec::new();
    for i in 0..STREAMS {
        let s = stream(i);
        out.push(format!("{:?}", store.stream_info(&s).await.unwrap()));
        out.push(format!("{:?}", store.stream_metadata(&s).await.unwrap()));
        let events = store
            .read_stream(&s, 1, 1_000, Direction::Forward)
            .await
            .map(|es| {
                es.iter()
                    .map(|e| (e.version, e.position, e.id))
                    .collect::<Vec<_>>()
            });
        out.push(format!("{events:?}"));
    }
    let head = store.head_position().await.unwrap();
    out.push(format!("head {head:?}"));
    // The store takes the next append at the version it reports.
    let s = stream(3);
    let v = store.stream_info(&s).await.unwrap().unwrap().version;
    store
        .append(&s, ExpectedVersion::Exact(v), vec![event(0)])
        .await
        .unwrap();
    store.close().await.unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_holding_events_past_its_location_replays_to_the_same_store() {
    let src = tempfile::tempdir().unwrap();
    let first_covers = two_sessions(src.path()).await;
    let (index, end) = read_checkpoint(src.path());
    assert!(first_covers < end, "the second session wrote after it");
    let expected = {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        seen(dir.path()).await
    };
    // The whole table as of the end, claiming to cover only the first
    // session, or nothing at all: replay meets events, deletes and metadata
    // the table already holds.
    for covers in [first_covers, (0, FIRST_FRAME_OFFSET)] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        write_checkpoint(dir.path(), &index, covers);
        assert_eq!(seen(dir.path()).await, expected, "covers {covers:?}");
        assert_verify_clean(dir.path());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_holding_events_past_the_end_of_the_log_is_not_used() {
    let src = tempfile::tempdir().unwrap();
    two_sessions(src.path()).await;
    let (mut index, covers) = read_checkpoint(src.path());
    let expected = {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        seen(dir.path()).await
    };
    let s = stream(3);
    let version = index.streams.get(s.as_str()).unwrap().head.version;
    let past_end = position_of(covers.0, covers.1 + 4096).0;
    index.add_event(&s, version + 1, past_end);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src.path(), dir.path());
    write_checkpoint(dir.path(), &index, covers);
    assert_eq!(seen(dir.path()).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_written_beside_racing_appends_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path()).max_segment_bytes(64 * 1024);
    cfg.stream_checkpoint_every_segments = 1;
    let store = std::sync::Arc::new(LogStore::open(cfg.clone()).await.unwrap());
    let mut tasks = Vec::new();
    for t in 0..4usize {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..400usize {
                let s = StreamId::new(format!("t{t}-{}", i % 37)).unwrap();
                let r = store
                    .append(&s, ExpectedVersion::Any, vec![event(i)])
                    .await
                    .unwrap();
                acked.push(Acked {
                    stream: s,
                    first_version: r.next_expected_version,
                    ids: Vec::new(),
                    first_position: r.first_position,
                    last_position: r.last_position,
                });
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    // Every background checkpoint has finished; the store is not closed,
    // so what is on disk is what a crash would leave.
    store.settle().await.unwrap();
    assert!(
        dir.path().join(STREAM_CHECKPOINT_FILE).exists(),
        "segments were sealed, so checkpoints were written"
    );
    let (_, covers) = read_checkpoint(dir.path());
    assert!(covers.0 > 0, "the checkpoint covers sealed segments");
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    let reopened = LogStore::open(LogConfig {
        dir: crashed.path().to_path_buf(),
        ..cfg
    })
    .await
    .unwrap();
    for a in &acked {
        let events = reopened
            .read_stream(&a.stream, a.first_version, 1, Direction::Forward)
            .await
            .unwrap();
        let e = events.first().unwrap();
        assert_eq!(e.position, a.first_position, "{}", a.stream);
        assert_eq!(e.version, a.first_version);
    }
    assert_eq!(
        reopened.head_position().await.unwrap(),
        acked
            .iter()
            .map(|a| a.last_position)
            .max()
            .unwrap_or(Position::START)
    );
    reopened.close().await.unwrap();
    assert_verify_clean(crashed.path());
}
