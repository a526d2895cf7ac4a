//! A scavenge cut short by a power cut at every one of its storage
//! operations, in every power-cut mode: the store reopens with every live
//! event at its position, `verify` is clean, and a second scavenge finishes
//! the work. The rewrite's steps (temporary file, its sync, the rename, the
//! directory sync, removing the plain file, the index file) are each cut
//! after in turn.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use strata_core::{
    Direction, EventStore, ExpectedVersion, NewEvent, Position, ReadFilter, ScavengeOptions,
    StreamId,
};
use strata_log::io::Storage;
use strata_log::powercut::{PowerCut, PowerCutDisk};
use strata_log::verify::verify;
use strata_log::{Durability, LogConfig, LogStore};

fn config(root: &Path, disk: &PowerCutDisk) -> LogConfig {
    let storage: Arc<dyn Storage> = Arc::new(disk.clone());
    LogConfig::new(root)
        .durability(Durability::Always)
        .max_segment_bytes(16 * 1024)
        .scavenge_bytes_per_second(0)
        .storage(storage)
}

fn event(i: usize) -> NewEvent {
    NewEvent::json(
        "Happened",
        &serde_json::json!({ "i": i, "pad": "x".repeat(100) }),
    )
    .unwrap()
}

/// The live events: (stream, version, position).
type Live = Vec<(StreamId, u64, Position)>;

/// 240 events over 8 streams; the even streams are then deleted, or, if
/// `erase`, stream `s-0` alone is erased (its last events lie in the
/// active segment, which the scavenge seals first).
async fn filled(root: &Path, erase: bool) -> (PowerCutDisk, Live) {
    let disk = PowerCutDisk::new();
    let store = LogStore::open(config(root, &disk)).await.unwrap();
    let mut live = Vec::new();
    for i in 0..240 {
        let s = StreamId::new(format!("s-{}", i % 8)).unwrap();
        let r = store
            .append(&s, ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
        if (erase && i % 8 != 0) || i % 8 % 2 == 1 {
            live.push((s, r.next_expected_version, r.first_position));
        }
    }
    if erase {
        let s = StreamId::new("s-0").unwrap();
        store.erase_stream(&s, ExpectedVersion::Any).await.unwrap();
    } else {
        for k in (0..8).step_by(2) {
            let s = StreamId::new(format!("s-{k}")).unwrap();
            store.delete_stream(&s, ExpectedVersion::Any).await.unwrap();
        }
    }
    store.close().await.unwrap();
    (disk, live)
}

async fn check(store: &LogStore, live: &Live) {
    for (s, v, p) in live {
        let got = store
            .read_stream(s, *v, 1, Direction::Forward)
            .await
            .unwrap();
        assert_eq!(got[0].position, *p, "{s} version {v}");
    }
    let kept: std::collections::HashSet<&StreamId> = live.iter().map(|l| &l.0).collect();
    let shown: Vec<Position> = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap()
        .iter()
        .filter(|e| kept.contains(&e.stream_id))
        .map(|e| e.position)
        .collect();
    assert_eq!(shown, live.iter().map(|l| l.2).collect::<Vec<_>>());
}

async fn check_all(store: &LogStore, live: &Live, erase: bool) {
    check(store, live).await;
    if erase {
        check_erased(store).await;
    }
}

/// `s-0` stays erased: no read returns its events.
async fn check_erased(store: &LogStore) {
    let s = StreamId::new("s-0").unwrap();
    assert!(matches!(
        store.read_stream(&s, 1, 1, Direction::Forward).await,
        Err(strata_core::Error::StreamDeleted { .. })
    ));
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert!(all.iter().all(|e| e.stream_id != s));
}

/// Storage operations a whole scavenge of the filled store takes.
async fn scavenge_ops(root: &Path, base: &PowerCutDisk, options: ScavengeOptions) -> u64 {
    let disk = base.cut(0, PowerCut::KeepAll);
    let store = LogStore::open(config(root, &disk)).await.unwrap();
    let before = disk.stats().ops;
    let report = store.scavenge(options).await.unwrap();
    assert!(report.segments_rewritten >= 3, "{report:?}");
    let ops = disk.stats().ops - before;
    store.close().await.unwrap();
    ops
}

#[test]
fn a_scavenge_cut_at_every_step_loses_no_live_event() {
    cut_at_every_step(false, ScavengeOptions::default());
}

/// The same for an `erased_only` scavenge after an erasure, which seals the
/// active segment first: the erased stream stays erased throughout.
#[test]
fn an_erasing_scavenge_cut_at_every_step_loses_no_live_event() {
    cut_at_every_step(true, ScavengeOptions { erased_only: true });
}

fn cut_at_every_step(erase: bool, options: ScavengeOptions) {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (base, live) = filled(root.path(), erase).await;
        let total = scavenge_ops(root.path(), &base, options.clone()).await;
        assert!(total > 10, "{total} operations");
        for mode in PowerCut::ALL {
            for k in 0..=total {
                let disk = base.cut(0, PowerCut::KeepAll);
                let store = LogStore::open(config(root.path(), &disk)).await.unwrap();
                disk.power_off_after(k);
                let _ = store.scavenge(options.clone()).await;
                drop(store);
                let after = disk.cut(k, mode);
                let what = format!("{mode:?}, cut after {k} of {total} operations");
                // Opening rebuilds an index file the cut left missing.
                let store = LogStore::open(config(root.path(), &after)).await.unwrap();
                check_all(&store, &live, erase).await;
                store.close().await.unwrap();
                let report = verify(root.path(), &after).unwrap();
                assert!(report.is_clean(), "{what}: {:?}", report.problems);
                let store = LogStore::open(config(root.path(), &after)).await.unwrap();
                store.scavenge(options.clone()).await.unwrap();
                check_all(&store, &live, erase).await;
                store.close().await.unwrap();
                let report = verify(root.path(), &after).unwrap();
                assert!(
                    report.is_clean(),
                    "{what}, then scavenged: {:?}",
                    report.problems
                );
            }
        }
    });
}
