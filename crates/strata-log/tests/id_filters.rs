//! Id filters of sealed segments: appends with fresh ids against many
//! sealed segments read almost no index chunk, ids in old segments are still
//! found (exact retries answered, reused ids refused) after a reopen, and
//! version-1 index files (no filter) still open and serve their ids.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::assert_verify_clean;
use strata_core::{AppendResult, Error, EventId, EventStore, ExpectedVersion, NewEvent, StreamId};
use strata_log::{Durability, LogConfig, LogStore};

/// Small segments: about three appends of [`recorded_append`] each.
fn cfg(dir: &Path) -> LogConfig {
    LogConfig::new(dir)
        .durability(Durability::None)
        .max_segment_bytes(64 * 1024)
}

fn sid(s: &str) -> StreamId {
    StreamId::new(s).unwrap()
}

/// Twenty ~1 KiB events with ids of their own.
fn recorded_append(i: usize) -> Vec<NewEvent> {
    (0..20)
        .map(|k| {
            NewEvent::json(
                "Recorded",
                &serde_json::json!({ "i": i, "k": k, "pad": "p".repeat(900) }),
            )
            .unwrap()
            .with_id(EventId::new())
        })
        .collect()
}

/// `n` small events with fresh ids.
fn fresh(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|k| {
            NewEvent::json("Fresh", &serde_json::json!({ "k": k }))
                .unwrap()
                .with_id(EventId::new())
        })
        .collect()
}

/// A store of `appends` recorded appends over 5 streams, closed; returns
/// what was appended and the results.
async fn build(dir: &Path, appends: usize) -> Vec<(StreamId, Vec<NewEvent>, AppendResult)> {
    let store = LogStore::open(cfg(dir)).await.unwrap();
    let mut done = Vec::new();
    for i in 0..appends {
        let s = sid(&format!("acct-{}", i % 5));
        let events = recorded_append(i);
        let r = store
            .append(&s, ExpectedVersion::Any, events.clone())
            .await
            .unwrap();
        done.push((s, events, r));
    }
    store.close().await.unwrap();
    done
}

fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    v.sort();
    v
}

fn version_of(file: &Path) -> u32 {
    let b = std::fs::read(file).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// Rewrites a version-2 index file as version 1, the layout before id
/// filters (docs/log-format.md): version 1, the header's last 4 bytes zero,
/// no filter section, no filter fence, the trailer's offset and checksum
/// recomputed. Every section and chunk fence is kept byte for byte.
fn downgrade_to_version_1(file: &Path) {
    let b = std::fs::read(file).unwrap();
    assert_eq!(version_of(file), 2);
    let u64_at = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let sizes = [24, 16, 16, 16, 8];
    let sections: u64 = (0..5).map(|k| u64_at(16 + 8 * k) * sizes[k]).sum();
    let sections_end = 64 + sections as usize;
    let fence_at = u64_at(b.len() - 16) as usize;
    let fences = &b[fence_at..b.len() - 16 - 24];
    let mut header = b[..64].to_vec();
    header[8..12].copy_from_slice(&1u32.to_le_bytes());
    header[60..64].copy_from_slice(&[0; 4]);
    let mut out = header.clone();
    out.extend_from_slice(&b[64..sections_end]);
    out.extend_from_slice(fences);
    let mut checked = header;
    checked.extend_from_slice(fences);
    out.extend_from_slice(&(sections_end as u64).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&checked).to_le_bytes());
    out.extend_from_slice(b"SXIE");
    std::fs::write(file, out).unwrap();
    assert_eq!(version_of(file), 1);
}

/// Exact retries of old appends return their original results; their ids
/// re-sent to another stream, or together with a new event, are refused.
async fn old_ids_are_found(store: &LogStore, done: &[(StreamId, Vec<NewEvent>, AppendResult)]) {
    for (s, events, original) in done.iter().step_by(7) {
        let again = store
            .append(s, ExpectedVersion::NoStream, events.clone())
            .await
            .unwrap();
        assert_eq!(&again, original, "retry of an append in an old segment");
        let other = store
            .append(&sid("elsewhere"), ExpectedVersion::Any, events.clone())
            .await;
        assert!(
            matches!(other, Err(Error::IdempotencyConflict { .. })),
            "ids reused in another stream: {other:?}"
        );
        let mut plus_new = events.clone();
        plus_new.extend(fresh(1));
        let mixed = store.append(s, ExpectedVersion::Any, plus_new).await;
        assert!(
            matches!(mixed, Err(Error::IdempotencyConflict { .. })),
            "recorded ids with a new one: {mixed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_ids_pass_and_old_ids_are_found_across_many_sealed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let done = build(dir.path(), 120).await;
    let sealed = index_files(dir.path());
    assert!(sealed.len() >= 30, "{} sealed segments", sealed.len());
    assert!(sealed.iter().all(|f| version_of(f) == 2));
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    old_ids_are_found(&store, &done).await;
    let r = store
        .append(&sid("acct-new"), ExpectedVersion::NoStream, fresh(200))
        .await
        .unwrap();
    assert_eq!(r.next_expected_version, 200);
    store.close().await.unwrap();
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    old_ids_are_found(&store, &done).await;
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_index_files_still_open_and_their_ids_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let done = build(dir.path(), 60).await;
    let files = index_files(dir.path());
    assert!(files.len() >= 15, "{} sealed segments", files.len());
    for f in &files {
        downgrade_to_version_1(f);
    }
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    old_ids_are_found(&store, &done).await;
    let before = store.index_chunk_reads();
    store
        .append(&sid("acct-new"), ExpectedVersion::NoStream, fresh(100))
        .await
        .unwrap();
    let reads = store.index_chunk_reads() - before;
    eprintln!(
        "version 1: {reads} chunk reads for 100 fresh ids against {} sealed segments",
        files.len()
    );
    assert!(
        reads >= 100 * files.len() as u64,
        "without filters every id reads a chunk of every segment: {reads} reads"
    );
    store.close().await.unwrap();
    // Opening did not rebuild them: they are still version 1, and sound.
    assert!(files.iter().all(|f| version_of(f) == 1));
    assert_verify_clean(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_of_fresh_ids_reads_almost_no_index_chunk() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), 120).await;
    let segments = index_files(dir.path()).len() as u64;
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    let ids = 200u64;
    let before = store.index_chunk_reads();
    store
        .append(
            &sid("acct-new"),
            ExpectedVersion::NoStream,
            fresh(ids as usize),
        )
        .await
        .unwrap();
    let reads = store.index_chunk_reads() - before;
    eprintln!("{reads} chunk reads for {ids} fresh ids against {segments} sealed segments");
    // Without filters: `ids × segments` reads. With them, only false
    // positives read a chunk (about 0.15 % of the probes).
    assert!(
        reads * 100 < ids * segments,
        "{reads} chunk reads for {ids} fresh ids against {segments} sealed segments"
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_id_filter_is_reported_by_verify_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let done = build(dir.path(), 12).await;
    let file = index_files(dir.path()).remove(0);
    let mut b = std::fs::read(&file).unwrap();
    let fence_at = u64::from_le_bytes(b[b.len() - 16..b.len() - 8].try_into().unwrap()) as usize;
    b[fence_at - 5] ^= 0x10; // inside the filter, which ends where the fences start
    std::fs::write(&file, &b).unwrap();
    let report = strata_log::verify::verify(dir.path(), &strata_log::io::FsStorage).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.what.contains("id filter") && p.file == file),
        "{:#?}",
        report.problems
    );
    let store = LogStore::open(cfg(dir.path())).await.unwrap();
    let (s, events, original) = &done[0];
    // The first lookup meets the damage and the index is rebuilt.
    let first = store.append(s, ExpectedVersion::Any, events.clone()).await;
    assert!(matches!(first, Err(Error::Corrupt { .. })), "{first:?}");
    let mut again = Err(Error::Closed);
    for _ in 0..100 {
        again = store.append(s, ExpectedVersion::Any, events.clone()).await;
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(&again.unwrap(), original);
    store.close().await.unwrap();
    assert_verify_clean(dir.path());
}
