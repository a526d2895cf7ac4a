//! Compression of sealed segments: reads are unchanged, the ratio on JSON
//! events is real, and a crash in the middle of compressing is harmless.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use strata_core::{EventStore, Position, ReadFilter};
use strata_log::compress::Compression;
use strata_log::{Durability, LogConfig, LogStore};

fn cfg(dir: &std::path::Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::None)
        .max_segment_bytes(256 * 1024)
        .compression(Some(Compression::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_segments_are_compressed_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, 3000, 50, &mut acked).await;
    store.close().await.unwrap();
    let zsegs = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".zseg")
        })
        .count();
    assert!(
        zsegs >= 2,
        "sealed segments must be compressed, found {zsegs}"
    );
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    check_acked(&store, &acked).await;
    let u = store.disk_usage().unwrap();
    assert_eq!(u.events, 3000);
    let ratio = u.segment_bytes as f64 / u.segment_bytes_on_disk as f64;
    assert!(
        ratio > 2.0,
        "JSON events should compress well, ratio {ratio:.2}"
    );
    let typed = store
        .read_all(
            Position::START,
            10_000,
            &ReadFilter::all().event_types(["Happened"]),
        )
        .await
        .unwrap();
    assert_eq!(typed.len(), 3000);
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_compression_is_tidied_on_open() {
    let dir = tempfile::tempdir().unwrap();
    // Write plain segments first.
    let plain = LogConfig::new(dir.path())
        .durability(Durability::None)
        .max_segment_bytes(256 * 1024);
    let store = LogStore::open(plain.clone()).await.unwrap();
    let mut acked = Vec::new();
    append_some(&store, 2000, 20, &mut acked).await;
    store.close().await.unwrap();
    let seg = dir.path().join("segments");
    // A crash mid-compression leaves a temporary file; a crash after the
    // rename but before the delete leaves both forms.
    std::fs::write(seg.join("00000000.zseg.tmp"), b"half a file").unwrap();
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    check_acked(&store, &acked).await;
    store.close().await.unwrap();
    assert!(!seg.join("00000000.zseg.tmp").exists());
    assert!(seg.join("00000000.zseg").exists());
    // Now put a stale plain copy back next to the compressed one.
    std::fs::write(seg.join("00000000.seg"), b"stale").unwrap();
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    check_acked(&store, &acked).await;
    store.close().await.unwrap();
    assert!(!seg.join("00000000.seg").exists());
    // A store opened without compression still reads compressed segments.
    let store = LogStore::open(plain).await.unwrap();
    check_acked(&store, &acked).await;
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}
