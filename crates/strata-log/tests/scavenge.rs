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
    strata_log::inspect::files(dir).unwrap()
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
    // Backwards over the scavenged segments (gap frames where events were
    // removed): the same, newest first.
    let back: Vec<Position> = store
        .read_all_backward(Position::END, 100_000, &ReadFilter::all())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.stream_id.as_str().starts_with("s-") && !gone.contains(&e.stream_id))
        .map(|e| e.position)
        .collect();
    assert!(
        back.iter().rev().eq(live.iter()),
        "$all backwards holds every live event, newest first"
    );
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

/// Frames that hold a removable event beside live ones keep the live ones:
/// the removable record is emptied in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_shared_with_live_events_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    let mut live = Vec::new();
    for i in 0..400 {
        let gone = StreamId::new(format!("d-{}", i % 4)).unwrap();
        let keep = StreamId::new(format!("k-{}", i % 4)).unwrap();
        let parts = vec![
            strata_core::StreamAppend::new(
                gone,
                ExpectedVersion::Any,
                vec![marked(i, "GONE-MARKER")],
            ),
            strata_core::StreamAppend::new(
                keep.clone(),
                ExpectedVersion::Any,
                vec![marked(i, "kept")],
            ),
        ];
        let r = store.append_multi(parts).await.unwrap();
        live.push((keep, r[1].next_expected_version, r[1].first_position));
    }
    for k in 0..4 {
        let s = StreamId::new(format!("d-{k}")).unwrap();
        store
            .tombstone_stream(&s, ExpectedVersion::Any)
            .await
            .unwrap();
    }
    let mut filler = Vec::new();
    append_some(&store, 300, 2, &mut filler).await;
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert!(report.events_removed > 300, "{report:?}");
    for (s, v, p) in &live {
        let got = store
            .read_stream(s, *v, 1, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(got[0].position, *p);
    }
    let all = store
        .read_all(Position::START, 100_000, &ReadFilter::all().category("k"))
        .await
        .unwrap();
    assert_eq!(all.len(), 400);
    store.close().await.unwrap();
    let left = all_bytes(dir.path())
        .windows(11)
        .filter(|w| *w == b"GONE-MARKER")
        .count();
    // Only the active segment may still hold removable events.
    assert!(left < 100, "{left} removed events' data left");
    assert_verify_clean(dir.path());
}

/// Eight writers and a subscriber run throughout two scavenges: nothing
/// acknowledged is lost, the subscriber sees no duplicate and no gap, and
/// `verify` is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scavenging_while_writers_and_a_subscriber_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(LogStore::open(small_segments(dir.path())).await.unwrap());
    let (acked, gone) = fill(&store).await;
    let mut sub = store
        .subscribe(strata_core::SubscribeFrom::Start, ReadFilter::all())
        .await
        .unwrap();
    // The subscriber reads throughout, until told the head to reach.
    let (until_tx, mut until_rx) = tokio::sync::watch::channel(Position(u64::MAX));
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            let until = *until_rx.borrow_and_update();
            if seen.last().is_some_and(|p| *p >= until) {
                return seen;
            }
            tokio::select! {
                m = sub.next() => match m.unwrap().unwrap() {
                    strata_core::SubscriptionMessage::Event(e) => seen.push(e.position),
                    strata_core::SubscriptionMessage::CaughtUp(_) => {}
                },
                _ = until_rx.changed() => {}
            }
        }
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (store, stop) = (store.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let s = StreamId::new(format!("w-{w}")).unwrap();
            let mut mine = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = store
                    .append(&s, ExpectedVersion::Any, vec![event(mine.len())])
                    .await
                    .unwrap();
                mine.push(r.first_position);
            }
            mine
        }));
    }
    let scavenger = {
        let store = store.clone();
        tokio::spawn(async move {
            let a = store.scavenge(ScavengeOptions::default()).await.unwrap();
            let b = store.scavenge(ScavengeOptions::default()).await.unwrap();
            (a, b)
        })
    };
    let (a, _b) = scavenger.await.unwrap();
    assert!(a.events_removed > 0, "{a:?}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let head = store.head_position().await.unwrap();
    until_tx.send(head).unwrap();
    let seen = reader.await.unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "no duplicate, in order"
    );
    let seen: HashSet<Position> = seen.into_iter().collect();
    for p in &written {
        assert!(seen.contains(p), "writer event at {p:?} missed");
    }
    for a in acked.iter().filter(|a| !gone.contains(&a.stream)) {
        assert!(
            seen.contains(&a.first_position),
            "live event at {:?} missed",
            a.first_position
        );
    }
    std::sync::Arc::try_unwrap(store)
        .ok()
        .unwrap()
        .close()
        .await
        .unwrap();
    assert_verify_clean(dir.path());
}

/// Events retention cuts (`max_count`, `max_age`) go at a scavenge; the
/// kept ones read as before, after a reopen from the log alone too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_cut_events_are_scavenged() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    let s = StreamId::new("sensor-1").unwrap();
    for i in 0..600 {
        store
            .append(&s, ExpectedVersion::Any, vec![marked(i, "OLD-READING")])
            .await
            .unwrap();
    }
    let keep = strata_core::StreamMetadata {
        max_count: Some(10),
        ..Default::default()
    };
    store
        .set_stream_metadata(&s, ExpectedVersion::NoStream, &keep)
        .await
        .unwrap();
    let mut filler = Vec::new();
    append_some(&store, 300, 2, &mut filler).await;
    let report = store.scavenge(ScavengeOptions::default()).await.unwrap();
    assert!(report.events_removed >= 400, "{report:?}");
    let versions = |events: Vec<strata_core::RecordedEvent>| -> Vec<u64> {
        events.iter().map(|e| e.version).collect()
    };
    let got = store
        .read_stream(&s, 1, 100, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(versions(got), (591..=600).collect::<Vec<_>>());
    store.close().await.unwrap();
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    let got = store
        .read_stream(&s, 1, 100, Direction::Forward)
        .await
        .unwrap();
    assert_eq!(versions(got), (591..=600).collect::<Vec<_>>());
    let r = store
        .append(&s, ExpectedVersion::Exact(600), vec![event(0)])
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 601);
    for a in &filler {
        let got = store
            .read_stream(&a.stream, a.first_version, 1, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(got[0].position, a.first_position);
    }
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}
