//! Scavenging: the space of deleted, tombstoned and retention-cut events is
//! given back, online, while every live event keeps its position, data and
//! version, before and after a reopen, and `verify` stays clean.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::*;
use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, ScavengeOptions,
    StreamId,
};
use strata_log::{Durability, LogConfig, LogStore};

fn small_segments(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(64 * 1024)
        .scavenge_bytes_per_second(0)
}

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.extend(std::fs::read(e).unwrap());
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn segment_bytes(dir: &Path) -> u64 {
    walk(&dir.join("segments"))
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

fn marked(i: usize, marker: &str) -> NewEvent {
    NewEvent::json(
        "Happened",
        &serde_json::json!({ "i": i, "note": format!("{marker}-{i}"), "pad": "y".repeat(200) }),
    )
    .unwrap()
    .with_id(strata_core::EventId::new())
}

/// 20 streams, events round-robin; streams 0..10 are deleted (even ones
/// soft, odd ones tombstoned) and their events carry a marker.
async fn fill(store: &LogStore) -> (Vec<Acked>, HashSet<StreamId>) {
    let mut acked = Vec::new();
    for i in 0..1_500 {
        let s = stream(i % 20);
        let e = if i % 20 < 10 {
            marked(i, "GONE-MARKER")
        } else {
            marked(i, "kept")
        };
        let id = e.id.unwrap();
        let r = store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
        acked.push(Acked {
            stream: s,
            first_version: r.next_expected_version,
            ids: vec![id],
            first_position: r.first_position,
            last_position: r.last_position,
        });
    }
    let mut gone = HashSet::new();
    for k in 0..10 {
        let s = stream(k);
        if k % 2 == 0 {
            store.delete_stream(&s, ExpectedVersion::Any).await.unwrap();
        } else {
            store
                .tombstone_stream(&s, ExpectedVersion::Any)
                .await
                .unwrap();
        }
        gone.insert(s);
    }
    (acked, gone)
}

/// Every live event reads back at its position.
async fn check_live(store: &LogStore, acked: &[Acked], gone: &HashSet<StreamId>) {
    for a in acked.iter().filter(|a| !gone.contains(&a.stream)) {
        let got = store
            .read_stream(&a.stream, a.first_version, 1, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(got[0].position, a.first_position);
        assert_eq!(got[0].id, a.ids[0]);
    }
    let live: Vec<Position> = acked
        .iter()
        .filter(|a| !gone.contains(&a.stream))
        .map(|a| a.first_position)
        .collect();
    let all: Vec<Position> = store
        .read_all(Position::START, 100_000, &ReadFilter::all())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.stream_id.as_str().starts_with("s-") && !gone.contains(&e.stream_id))
        .map(|e| e.position)
        .collect();
    assert_eq!(all.len(), live.len(), "$all holds every live event");
    assert!(all == live, "$all holds every live event in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scavenging_gives_back_the_space_of_deleted_streams() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    let (acked, gone) = fill(&store).await;
    // Seal the segment holding the last deleted events.
    let mut more = Vec::new();
    for i in 0..400 {
        let s = StreamId::new(format!("t-{}", i % 3)).unwrap();
        let e = event(i);
        let id = e.id.unwrap();
        let r = store
            .append(&s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap();
        more.push(Acked {
            stream: s,
            first_version: r.next_expected_version,
            ids: vec![id],
            first_position: r.first_position,
            last_position: r.last_position,
        });
    }
    let before = segment_bytes(dir.path());
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert!(report.segments_rewritten > 0, "{report:?}");
    assert!(report.events_removed >= 700, "{report:?}");
    assert!(report.bytes_after * 3 < report.bytes_before, "{report:?}");
    assert!(segment_bytes(dir.path()) < before);
    check_live(&store, &acked, &gone).await;
    check_acked(&store, &more).await;
    // Versions go on as before.
    let mut acked = acked;
    let e = event(1);
    let id = e.id.unwrap();
    let r = store
        .append(&stream(12), ExpectedVersion::Exact(75), vec![e])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 76);
    acked.push(Acked {
        stream: stream(12),
        first_version: 76,
        ids: vec![id],
        first_position: r.first_position,
        last_position: r.last_position,
    });
    store.close().await.unwrap();
    assert!(
        !all_bytes(dir.path())
            .windows(11)
            .any(|w| w == b"GONE-MARKER"),
        "no byte of a removed event's data is left"
    );
    assert_verify_clean(dir.path());
    // Reopened as it is, and rebuilt from the log alone.
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    check_live(&store, &acked, &gone).await;
    store.close().await.unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    check_live(&store, &acked, &gone).await;
    let info = store.stream_info(&stream(1)).await.unwrap().unwrap();
    assert_eq!(info.state, strata_core::StreamState::Tombstoned);
    let r = store
        .append(&stream(0), ExpectedVersion::Any, vec![event(2)])
        .await
        .unwrap();
    assert_eq!(
        r.next_expected_version, 76,
        "a soft-deleted stream continues"
    );
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}
