//! Erasing a stream's snapshots from the durable snapshot store: no byte of
//! any of its snapshots (live, superseded beyond the cap, replaced, deleted
//! earlier) nor its name is left in any file of the directory; other
//! streams' snapshots load as before, through a reopen; and an erasure cut
//! by a power cut at any of its storage operations, in every mode, leaves
//! the stream's snapshots either all hidden or (cut before its tombstone was
//! durable, so not acknowledged) all there, the others intact, and erasing
//! again finishes the work.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use strata_core::clock::from_micros;
use strata_core::{Snapshot, SnapshotStore, StreamId};
use strata_log::io::{FsStorage, Storage};
use strata_log::powercut::{PowerCut, PowerCutDisk};
use strata_log::snapshot::{LogSnapshotStore, SnapshotStoreOptions};

const SECRET: &str = "SECRET-SNAP-4e21";
const KEPT: &str = "KEPT-SNAP-b7d0";
const VERSIONS: u64 = 24;

fn person() -> StreamId {
    StreamId::new("person-7").unwrap()
}

fn account() -> StreamId {
    StreamId::new("account-1").unwrap()
}

fn snap(s: &StreamId, version: u64, marker: &str) -> Snapshot {
    Snapshot {
        stream: s.clone(),
        aggregate_type: format!("{marker}-type"),
        version,
        schema_version: 1,
        state: Bytes::from(format!(
            "{{\"note\":\"{marker}-{version}\",\"pad\":\"{}\"}}",
            "p".repeat(200)
        )),
        taken_at: from_micros(1_700_000_000_000_000 + version as i64),
    }
}

/// Small files, and no compaction by itself: dead records stay in the files
/// until the erasure.
fn options() -> SnapshotStoreOptions {
    SnapshotStoreOptions {
        max_file_bytes: 4096,
        compact_min_reclaimable_bytes: u64::MAX,
        compact_reclaimable_percent: 100,
    }
}

fn open_on(dir: &Path, storage: Arc<dyn Storage>) -> LogSnapshotStore {
    LogSnapshotStore::open_with_options(dir, storage, options()).unwrap()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    strata_log::inspect::files(dir).unwrap()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The files under `dir` holding `needle`.
fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| holds(&std::fs::read(p).unwrap(), needle))
        .collect()
}

/// Snapshots of both streams at versions 1..=VERSIONS (the cap keeps the
/// newest 16), `person-7`'s version 3 saved twice, and a delete of
/// `person-7` halfway: live, superseded, replaced and deleted records of it
/// lie in several files.
async fn fill(store: &LogSnapshotStore) {
    for v in 1..=VERSIONS {
        store.save(snap(&person(), v, SECRET)).await.unwrap();
        store.save(snap(&account(), v, KEPT)).await.unwrap();
        if v == 3 {
            store.save(snap(&person(), v, SECRET)).await.unwrap();
        }
        if v == VERSIONS / 2 {
            store.delete(&person()).await.unwrap();
        }
    }
}

/// `account-1` keeps its newest 16 snapshots; `person-7` has none.
async fn assert_state(store: &LogSnapshotStore) {
    assert_eq!(store.load(&person(), u64::MAX).await.unwrap(), None);
    for v in VERSIONS - 15..=VERSIONS {
        assert_eq!(
            store.load(&account(), v).await.unwrap(),
            Some(snap(&account(), v, KEPT)),
            "account-1 at {v}"
        );
    }
    assert_eq!(store.load(&account(), VERSIONS - 16).await.unwrap(), None);
    assert_eq!(store.stats().snapshots, 16);
}

#[tokio::test]
async fn erasure_leaves_no_byte_of_the_streams_snapshots_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_on(dir.path(), Arc::new(FsStorage));
    fill(&store).await;
    assert!(files_holding(dir.path(), SECRET).len() >= 2);
    store.erase(&person()).await.unwrap();
    assert_eq!(files_holding(dir.path(), SECRET), Vec::<PathBuf>::new());
    // Its tombstones went too: not even the name is left.
    assert_eq!(files_holding(dir.path(), "person-7"), Vec::<PathBuf>::new());
    assert!(!files_holding(dir.path(), KEPT).is_empty());
    assert_state(&store).await;
    // Erasing again, or a stream without snapshots, changes nothing.
    let before: Vec<(PathBuf, Vec<u8>)> = walk(dir.path())
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    store.erase(&person()).await.unwrap();
    store
        .erase(&StreamId::new("nobody-1").unwrap())
        .await
        .unwrap();
    for (p, b) in &before {
        assert_eq!(&std::fs::read(p).unwrap(), b, "{} changed", p.display());
    }
    // Saves go on.
    store
        .save(snap(&account(), VERSIONS + 1, KEPT))
        .await
        .unwrap();
    drop(store);

    let store = open_on(dir.path(), Arc::new(FsStorage));
    assert_eq!(
        store.load(&account(), u64::MAX).await.unwrap(),
        Some(snap(&account(), VERSIONS + 1, KEPT))
    );
    assert_eq!(store.load(&person(), u64::MAX).await.unwrap(), None);
    assert_eq!(files_holding(dir.path(), SECRET), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn the_default_erase_deletes() {
    let store = strata_core::MemorySnapshotStore::new();
    store.save(snap(&person(), 1, SECRET)).await.unwrap();
    store.save(snap(&account(), 1, KEPT)).await.unwrap();
    store.erase(&person()).await.unwrap();
    assert_eq!(store.load(&person(), u64::MAX).await.unwrap(), None);
    assert!(store.load(&account(), u64::MAX).await.unwrap().is_some());
}

/// The files of a power-cut disk holding `needle`.
fn disk_files_holding(disk: &PowerCutDisk, needle: &str) -> Vec<PathBuf> {
    disk.files()
        .into_iter()
        .filter(|(_, b)| holds(b, needle))
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn an_erasure_cut_at_every_step_hides_the_stream_and_keeps_the_others() {
    let root = tempfile::tempdir().unwrap();
    // The store's LOCK is taken on the real file system.
    std::fs::create_dir_all(root.path().join("snapshots")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let base = PowerCutDisk::new();
        let store = open_on(root.path(), Arc::new(base.clone()));
        fill(&store).await;
        drop(store);
        // The storage operations of a whole erasure.
        let disk = base.cut(0, PowerCut::KeepAll);
        let store = open_on(root.path(), Arc::new(disk.clone()));
        let before = disk.stats().ops;
        store.erase(&person()).await.unwrap();
        let total = disk.stats().ops - before;
        drop(store);
        assert!(total > 8, "{total} operations");
        assert!(disk_files_holding(&disk, SECRET).is_empty());
        for mode in PowerCut::ALL {
            for k in 0..=total {
                let what = format!("{mode:?}, cut after {k} of {total} operations");
                let disk = base.cut(0, PowerCut::KeepAll);
                let store = open_on(root.path(), Arc::new(disk.clone()));
                disk.power_off_after(k);
                let erased = store.erase(&person()).await;
                drop(store);
                let after = disk.cut(k, mode);
                let store = open_on(root.path(), Arc::new(after.clone()));
                if erased.is_ok() {
                    assert!(
                        disk_files_holding(&after, SECRET).is_empty(),
                        "{what}: an acknowledged erasure left bytes"
                    );
                }
                // Cut before its tombstone was durable, the erasure did
                // not happen (and nothing was rewritten yet); after, the
                // stream's snapshots are hidden whatever was rewritten.
                let left = store.load(&person(), u64::MAX).await.unwrap();
                assert!(
                    left.is_none() || left == Some(snap(&person(), VERSIONS, SECRET)),
                    "{what}: {left:?}"
                );
                assert!(left.is_none() || erased.is_err(), "{what}");
                for v in VERSIONS - 15..=VERSIONS {
                    assert_eq!(
                        store.load(&account(), v).await.unwrap(),
                        Some(snap(&account(), v, KEPT)),
                        "{what}: account-1 at {v}"
                    );
                }
                store.erase(&person()).await.unwrap();
                assert!(
                    disk_files_holding(&after, SECRET).is_empty(),
                    "{what}, then erased again"
                );
                assert_state(&store).await;
                drop(store);
            }
        }
    });
}
