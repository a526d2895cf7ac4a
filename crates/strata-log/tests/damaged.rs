//! A damaged log: `verify` names the root problem once with a count of what
//! follows from it, and a repair cuts the log back to its last good frame,
//! keeping every cut byte in a side directory.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::FileExt;

use common::*;
use strata_core::{Error, EventStore, ExpectedVersion, Position, ReadFilter};
use strata_log::io::FsStorage;
use strata_log::verify::{plan_repair, verify};
use strata_log::{Durability, LogConfig, LogStore};

fn small_segments(dir: &std::path::Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::Always)
        .max_segment_bytes(64 * 1024)
}

/// 1,200 events over sealed segments, closed; the stream checkpoint is kept.
async fn sealed_store(dir: &std::path::Path) -> Vec<Acked> {
    let cfg = small_segments(dir).durability(Durability::None);
    let store = LogStore::open(cfg).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, 1200, 10, &mut acked).await;
    store.close().await.unwrap();
    assert!(
        segment_path(dir, 2).exists(),
        "the test needs sealed segments"
    );
    acked
}

/// Breaks the frame holding the single-event append `victim`: its length field.
fn break_frame(dir: &std::path::Path, victim: &Acked) {
    let (n, off) = (
        (victim.first_position.0 >> 32) as u32,
        victim.first_position.0 & 0xffff_ffff,
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(segment_path(dir, n))
        .unwrap();
    f.write_all_at(&[0xFF, 0x7F, 0x13, 0x00], off - 20).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_root_problem_once_with_a_count() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    let report = verify(dir.path(), &FsStorage).unwrap();
    assert_eq!(
        report.problems.len(),
        1,
        "one root problem: {:#?}",
        report
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    let root = &report.problems[0];
    assert!(root.file.ends_with("00000000.seg"), "{root}");
    assert_eq!(
        root.offset,
        Some((victim.first_position.0 & 0xffff_ffff) - 20)
    );
    assert!(root.follows > 100, "{root}");
    assert!(
        root.to_string().contains("further findings follow"),
        "{root}"
    );
    let damage = report.first_damage.clone().unwrap();
    assert_eq!(damage.segment, 0);
    // The walk cannot read past the break in its segment: the readable
    // events after it are those of the later segments.
    let behind = acked
        .iter()
        .filter(|a| a.first_position.0 >> 32 > 0)
        .count() as u64;
    assert_eq!(damage.events_after, behind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_cuts_to_the_last_good_frame_and_keeps_the_cut_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    // Indexes and checkpoint gone: the store must scan, and refuses to open.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let seg_bytes: u64 = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(matches!(
        LogStore::open(small_segments(dir.path())).await,
        Err(Error::Corrupt { .. })
    ));
    let report = verify(dir.path(), &FsStorage).unwrap();
    let plan = plan_repair(dir.path(), &FsStorage, &report, "test")
        .unwrap()
        .expect("a damaged log has a plan");
    assert!(!plan.later_segments.is_empty());
    let done = plan.apply(&FsStorage).unwrap();
    // Every byte of the segments is still on disk: in the log or aside.
    let aside: u64 = done
        .kept
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    // The damaged segment is copied aside whole and later ones moved there.
    assert_eq!(aside, seg_bytes);
    assert!(verify(dir.path(), &FsStorage).unwrap().is_clean());
    let store = LogStore::open(small_segments(dir.path())).await.unwrap();
    check_acked(&store, &acked[..100]).await;
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 100, "the log ends at the last good frame");
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_refuses_an_open_store() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    break_frame(dir.path(), &acked[1100]);
    let report = verify(dir.path(), &FsStorage).unwrap();
    let plan = plan_repair(dir.path(), &FsStorage, &report, "t")
        .unwrap()
        .unwrap();
    // The damage is in the active segment's data before later durable frames,
    // so the store does not open; hold its LOCK as an open store would.
    let _lock = strata_log::io::try_lock_file(&dir.path().join("LOCK"))
        .unwrap()
        .unwrap();
    let err = plan.apply(&FsStorage).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(!dir.path().join("repair-t").exists(), "nothing was moved");
}

/// Every file of the store's segments, with its bytes.
fn segment_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_opens_read_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let acked = sealed_store(dir.path()).await;
    let victim = &acked[100];
    break_frame(dir.path(), victim);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    std::fs::remove_file(dir.path().join("streams.ckpt")).unwrap();
    let before = segment_files(dir.path());
    let store = LogStore::open(small_segments(dir.path()).allow_damaged(true))
        .await
        .unwrap();
    // Everything before the damage is served ...
    for a in &acked[..100] {
        let got = store
            .read_stream(
                &a.stream,
                a.first_version,
                1,
                strata_core::Direction::Forward,
            )
            .await
            .unwrap();
        assert_eq!(got[0].position, a.first_position);
    }
    let all = store
        .read_all(Position::START, 10_000, &ReadFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    // ... a read that reaches the damage names it ...
    let next = Position(all.last().unwrap().position.0 + 1);
    match store.read_all(next, 10, &ReadFilter::all()).await {
        Err(Error::Corrupt { location, reason }) => {
            assert!(location.contains("00000000.seg"), "{location}");
            let off = (victim.first_position.0 & 0xffff_ffff) - 20;
            assert!(location.contains(&off.to_string()), "{location}");
            assert!(reason.contains("read-only"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // ... and writes are refused.
    let err = store
        .append(&victim.stream, ExpectedVersion::Any, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    store.close().await.unwrap();
    assert_eq!(segment_files(dir.path()), before, "no segment file changed");
    // Without the option it still refuses to open.
    assert!(matches!(
        LogStore::open(small_segments(dir.path())).await,
        Err(Error::Corrupt { .. })
    ));
}
